import { createRequire } from "node:module";
import path from "node:path";
import express, { type Router } from "express";
import type { OpenApiDocument } from "./openapi-document.js";

const nodeRequire = createRequire(import.meta.url);

/** Only what the page below loads (and the source maps developer tools ask for). */
const SWAGGER_UI_ASSETS = new Set([
  "swagger-ui.css",
  "swagger-ui.css.map",
  "index.css",
  "swagger-ui-bundle.js",
  "swagger-ui-bundle.js.map",
  "favicon-16x16.png",
  "favicon-32x32.png",
]);

/**
 * The page at /docs or /docs/, with URLs relative to it (so it also works behind a proxy that mounts
 * the API under a prefix): from /docs they need the "docs/" segment, from /docs/ they must not have it.
 */
function docsPage(title: string, assets: "docs/" | "./"): string {
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>${escapeHtml(title)}</title>
    <link rel="stylesheet" href="${assets}swagger-ui.css">
    <link rel="stylesheet" href="${assets}index.css">
    <link rel="icon" type="image/png" href="${assets}favicon-32x32.png" sizes="32x32">
    <link rel="icon" type="image/png" href="${assets}favicon-16x16.png" sizes="16x16">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="${assets}swagger-ui-bundle.js"></script>
    <script src="${assets}swagger-initializer.js"></script>
  </body>
</html>
`;
}

// Resolved against the script's own URL, which is the same whether the page is /docs or /docs/.
const DOCS_INITIALIZER = `const documentUrl = new URL("../openapi.json", document.currentScript.src).href;
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: documentUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
`;

/**
 * GET /openapi.json (the document, serialized once) and GET /docs (or /docs/): Swagger UI served from
 * the swagger-ui-dist package, so the docs work offline and need no CDN.
 */
export function createDocsRouter(document: OpenApiDocument): Router {
  const json = JSON.stringify(document);
  const assetsDir = path.dirname(nodeRequire.resolve("swagger-ui-dist/package.json"));
  const router = express.Router({ strict: true });
  router.get("/openapi.json", (_req, res) => {
    res.type("json").send(json);
  });
  // Both answer the page itself: a redirect would cost a round trip and break clients that do not follow it.
  const pageAtDocs = docsPage(document.info.title, "docs/");
  const pageUnderDocs = docsPage(document.info.title, "./");
  router.get("/docs", (_req, res) => {
    res.type("html").send(pageAtDocs);
  });
  router.get("/docs/", (_req, res) => {
    res.type("html").send(pageUnderDocs);
  });
  router.get("/docs/swagger-initializer.js", (_req, res) => {
    res.type("js").send(DOCS_INITIALIZER);
  });
  router.get("/docs/:asset", (req, res, next) => {
    if (!SWAGGER_UI_ASSETS.has(req.params.asset)) return next();
    res.sendFile(req.params.asset, { root: assetsDir, maxAge: "1h" });
  });
  return router;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
