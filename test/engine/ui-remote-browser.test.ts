/**
 * The dashboard working on another engine (issue 19), in headless Chromium (Debian's, driven by
 * playwright-core): two engines on loopback; A lists B's origin in scar.cfg's local.ui_engines (its
 * CSP), B lists A's origin in local.cors_origins (its API's CORS). Signed in on A's /ui/ with B's
 * URL, the Functions page shows the function deployed to B only, the header names B, and the Jobs
 * page gets B's job events live. An engine URL A does not list is refused by the browser (CSP) and
 * the form says what to check. Skipped when /usr/bin/chromium is missing.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { chromium } from "playwright-core";
import { defaultConfig } from "../../src/config/defaults.js";
import { UI_DIR } from "../../src/engine/api/ui.js";
import { useApiEngine } from "./api-harness.js";

const CHROMIUM = "/usr/bin/chromium";
const IMAGE = "localhost/scar-test/busybox:ui-remote";

/**
 * A free loopback port: A's CSP must name B before A starts, and B's CORS must name A before B
 * starts, so both ports are chosen first.
 */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
const aPort = await freePort();
const bPort = await freePort();
const aOrigin = `http://127.0.0.1:${aPort}`;
const bOrigin = `http://127.0.0.1:${bPort}`;

const cfgA = defaultConfig();
cfgA.local.ui_engines = [bOrigin];
const a = useApiEngine({ prefix: "scar-ui-remote-a-", api: { port: aPort, scarConfig: cfgA } });
const cfgB = defaultConfig();
cfgB.local.cors_origins = [aOrigin];
const b = useApiEngine({ prefix: "scar-ui-remote-b-", image: IMAGE, api: { port: bPort, scarConfig: cfgB } });

const UPPER =
  '#!/bin/sh\necho "upper-casing $INPUT_FILE_PATH"\ntr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"\n';
const NAME = "remote-upper";
const FDL = `functions:
  aws:
  - lambda:
      name: ${NAME}
      init_script: upper.sh
      container:
        image: ${IMAGE}
      input:
      - storage_provider: s3
        path: ${NAME}/input
      output:
      - storage_provider: s3
        path: ${NAME}/output
`;

test("the dashboard of engine A works on engine B: B's functions, and B's job events live", {
  skip: !existsSync(CHROMIUM)
    ? `${CHROMIUM} is not installed (scripts/install-deps.sh installs it)`
    : !existsSync(join(UI_DIR, "index.html"))
      ? "dist/ui is not built (npm run build)"
      : false,
}, async () => {
  assert.equal(a.api.url, aOrigin);
  assert.equal(b.api.url, bOrigin);
  const deployed = await b.call("POST", "/system/fdl?deploy=true", {
    body: { name: "upper.yaml", text: FDL, files: { "upper.sh": UPPER } },
  });
  assert.equal(deployed.status, 200, await deployed.clone().text());
  assert.deepEqual(await (await a.call("GET", "/system/services")).json(), [], "A has no function");

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  const violations: string[] = [];
  const pageErrors: string[] = [];
  try {
    const page = await browser.newPage();
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    page.on("pageerror", (e) => pageErrors.push(e.message));
    const calls: string[] = [];
    page.on("request", (r) => calls.push(r.url()));
    await page.goto(`${a.api.url}/ui/`);
    const admin = b.engine.credentials.admin;
    await page.getByLabel("User").fill(admin.user);
    await page.getByLabel("Password").fill(admin.password);

    // not an engine's address (a path): refused before any call
    await page.getByLabel("Engine URL").fill(`${bOrigin}/ui/`);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page
      .getByRole("alert")
      .filter({
        hasText: `the engine URL '${bOrigin}/ui/' is not an engine's address (like http://host:8080)`,
      })
      .waitFor();
    // an engine A does not list: the browser refuses the call (CSP), the form says what to check
    const unlisted = `http://localhost:${bPort}`;
    await page.getByLabel("Engine URL").fill(unlisted);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page
      .getByRole("alert")
      .filter({ hasText: `${unlisted} could not be reached` })
      .filter({ hasText: "local.ui_engines" })
      .waitFor();
    assert.ok(violations.length > 0, "the CSP stopped the call");
    violations.length = 0;

    // B, listed: signed in there (what was typed is kept after the failed try)
    assert.equal(await page.getByLabel("User").inputValue(), admin.user);
    assert.equal(await page.getByLabel("Engine URL").inputValue(), unlisted);
    await page.getByLabel("Engine URL").fill(bOrigin);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Functions" }).waitFor();
    await page.getByRole("row", { name: new RegExp(NAME) }).waitFor();
    await page.locator("header .engine-url").filter({ hasText: bOrigin }).waitFor();
    await page.evaluate("window.scarMarker = 42");

    // the Jobs page, live on B's events: an upload to B's input shows up and succeeds without a reload
    await page.getByRole("link", { name: "Jobs" }).click();
    await page.locator(".live.on").waitFor();
    const put = await b.call("PUT", `/system/objects/${NAME}?key=input/one.txt`, { body: "file one\n" });
    assert.equal(put.status, 201);
    await page.locator('.jobscroll li[data-status="succeeded"]').filter({ hasText: NAME }).waitFor();
    assert.equal(await page.evaluate("window.scarMarker"), 42, "no reload");
    assert.equal(await page.locator(".jobscroll li").count(), 1);

    // every API call went to B; A served the page's files only
    const toA = calls.filter((u) => u.startsWith(`${a.api.url}/`));
    assert.ok(toA.length > 0 && toA.every((u) => u.startsWith(`${a.api.url}/ui/`)), toA.join(" "));
    assert.ok(calls.some((u) => u === `${bOrigin}/system/services`));
    assert.deepEqual(violations, []);
    assert.deepEqual(pageErrors, []);
  } finally {
    await browser.close();
  }
});
