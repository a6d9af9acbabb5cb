import { createHash, timingSafeEqual } from "node:crypto";

/**
 * Checks "Authorization: Bearer <token>" against the configured token. Writes need it when a
 * token is configured; reads never do. Hashing first makes the comparison constant-time whatever
 * the lengths.
 */
export function createBearerCheck(token: string | undefined): (authorization: string | null | undefined) => boolean {
  if (token === undefined) return () => true;
  const expected = digest(token);
  return (authorization) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
    return match?.[1] !== undefined && timingSafeEqual(digest(match[1]), expected);
  };
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}
