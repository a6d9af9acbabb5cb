import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { expect } from "chai";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { ProductService } from "#gen/products/v1/product_service_pb.js";
import { startTestApi, type TestApi } from "../../test/support/api.js";
import type { OpenApiDocument } from "../src/rest/openapi-document.js";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_MISSING =
  `${CHROMIUM} is missing: this test drives Debian's chromium. ` +
  "Run `bash scripts/ensure-test-tools.sh` as root (it runs `apt-get install -y chromium`), " +
  "or `sudo apt-get update && sudo apt-get install -y chromium`.";
// Nothing Chromium does on its own (updates, sync, first-run pages) may add requests or slow the start.
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
const WAIT_MS = 5_000;

/** What one page did besides rendering: requests outside the API, failures, console errors. */
interface PageLog {
  foreignRequests: string[];
  failedRequests: string[];
  errors: string[];
}

describe("/docs in a real browser (Swagger UI) @integration", function () {
  // The first start of a freshly installed chromium builds its font cache and profile: tens of
  // seconds on a busy 2-core machine (CI installs it just before the run).
  this.timeout(90_000);
  let api: TestApi | undefined;
  let userDataDir: string | undefined;
  let context: BrowserContext | undefined;

  before(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(CHROMIUM_MISSING);
    api = await startTestApi();
    userDataDir = await mkdtemp(path.join(os.tmpdir(), "docs-browser-"));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 60_000,
    });
    context.setDefaultTimeout(WAIT_MS);
    context.setDefaultNavigationTimeout(WAIT_MS);
  });

  after(async () => {
    await context?.close();
    if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
    await api?.close();
  });

  /** A new tab on the docs page, recording what it loads and logs, for expectClean. */
  async function openDocs(pathname: "/docs" | "/docs/" = "/docs"): Promise<{ page: Page; log: PageLog }> {
    const origin = new URL(api!.url).origin;
    const page = await context!.newPage();
    const log: PageLog = { foreignRequests: [], failedRequests: [], errors: [] };
    // Anything not served by the API (a CDN, a validator badge) is refused as well as recorded.
    await page.route(
      (url) => url.origin !== origin,
      (route) => {
        log.foreignRequests.push(route.request().url());
        return route.abort();
      },
    );
    page.on("requestfailed", (request) => {
      log.failedRequests.push(`${request.url()}: ${request.failure()?.errorText}`);
    });
    page.on("response", (response) => {
      if (response.status() >= 400) log.failedRequests.push(`${response.url()}: ${response.status()}`);
    });
    page.on("console", (message) => {
      if (message.type() === "error") log.errors.push(message.text());
    });
    page.on("pageerror", (error) => {
      log.errors.push(error.message);
    });
    const response = await page.goto(`${api!.url}${pathname}`, { waitUntil: "load" });
    expect(response?.status()).to.equal(200);
    expect(response?.request().redirectedFrom(), `${pathname} answered without a redirect`).to.equal(null);
    return { page, log };
  }

  function expectClean(log: PageLog): void {
    expect(log.foreignRequests, "requests outside the API").to.deep.equal([]);
    expect(log.failedRequests, "failed requests").to.deep.equal([]);
    expect(log.errors, "console errors").to.deep.equal([]);
  }

  for (const pathname of ["/docs", "/docs/"] as const) {
    it(`when ${pathname} is opened, then it renders the API description from /openapi.json, loading nothing from elsewhere`, async () => {
      const document = (await (await fetch(`${api!.url}/openapi.json`)).json()) as OpenApiDocument;
      const { page, log } = await openDocs(pathname);
      try {
        const title = page.locator(".information-container .title");
        await title.waitFor();
        expect(await title.textContent())
          .to.include(document.info.title)
          .and.include(document.info.version);
        expect(await page.locator(".information-container .description").textContent()).to.include(
          "Registers and reads products.",
        );
        const createProduct = page.locator("#operations-ProductService-CreateProduct");
        expect(await createProduct.locator(".opblock-summary-method").textContent()).to.equal("POST");
        expect(await createProduct.locator(".opblock-summary-path").getAttribute("data-path")).to.equal("/products/");
        // Every documented operation is on the page, under its operationId.
        const rendered = await page
          .locator(".opblock")
          .evaluateAll((blocks) => blocks.map((b) => b.id.replace(/^operations-[^-]+-/, "")));
        const documented = Object.values(document.paths).flatMap((operations) =>
          Object.values(operations).map((o) => o.operationId),
        );
        expect([...rendered].sort()).to.deep.equal([...documented].sort());
        expectClean(log);
      } finally {
        await page.close();
      }
    });
  }

  it("when POST /products/ is tried out with its example body, then the page shows 201 and gRPC reads the product", async () => {
    const document = (await (await fetch(`${api!.url}/openapi.json`)).json()) as OpenApiDocument;
    const example = document.paths["/products/"]?.post?.requestBody?.content["application/json"]?.example as {
      id: string;
      name: string;
      description: string;
      pricing: { amount: number; currency: string };
      availability: { quantity: number; timestamp: string };
      category: string;
    };
    const { page, log } = await openDocs();
    try {
      const operation = page.locator("#operations-ProductService-CreateProduct");
      await operation.locator(".opblock-summary-control").click();
      await operation.getByRole("button", { name: "Try it out" }).click();
      const body = operation.locator("textarea.body-param__text");
      expect(JSON.parse(await body.inputValue())).to.deep.equal(example);
      await operation.getByRole("button", { name: "Execute" }).click();

      const status = operation.locator(".live-responses-table .response .response-col_status");
      await status.waitFor();
      expect((await status.textContent())?.trim()).to.equal("201");
      const shown = JSON.parse(
        (await operation.locator(".live-responses-table .response-col_description code.language-json").textContent()) ??
          "",
      );
      expect(shown).to.include({ id: example.id, version: 1 });
      expectClean(log);
    } finally {
      await page.close();
    }

    const client = createClient(ProductService, createGrpcTransport({ baseUrl: api!.url }));
    const { product } = await client.getProduct({ id: example.id }, { timeoutMs: WAIT_MS });
    expect(product).to.not.equal(undefined);
    expect(product).to.include({
      id: example.id,
      name: example.name,
      description: example.description,
      category: example.category,
      version: 1n,
    });
    expect(Number(product?.pricing?.amount)).to.equal(example.pricing.amount);
    expect(product?.pricing?.currency).to.equal(example.pricing.currency);
    expect(product?.availability?.quantity).to.equal(example.availability.quantity);
    // The example's timestamp has no offset, so it is UTC; the microseconds must survive.
    const { seconds = 0n, nanos = 0 } = product?.availability?.timestamp ?? {};
    const wholeSeconds = new Date(Number(seconds) * 1000).toISOString().slice(0, "YYYY-MM-DDTHH:MM:SS".length);
    const micros = String(nanos).padStart(9, "0").slice(0, 6);
    expect(`${wholeSeconds}.${micros}`).to.equal(example.availability.timestamp);
  });
});
