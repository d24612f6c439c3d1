/**
 * scar.cfg's `local.ui_engines` (issue 19): the dashboard's Content-Security-Policy lets the page call
 * the engines listed there besides its own, and only those; a value that is not a list of origins is
 * refused with the key named (over real HTTP for the header, the parser alone for the refusals).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { defaultConfig } from "../../src/config/defaults.js";
import { startApi } from "../../src/engine/api/index.js";
import { UI_DIR, UiEnginesError, uiEngines } from "../../src/engine/api/ui.js";
import { useApiEngine } from "./api-harness.js";

const t = useApiEngine({ prefix: "scar-ui-engines-" });

function connectSrc(csp: string): string | undefined {
  return csp
    .split(";")
    .map((d) => d.trim())
    .find((d) => d.startsWith("connect-src "));
}

test("the dashboard's CSP connects to 'self' only without local.ui_engines, and to the listed engines with it", {
  skip: existsSync(join(UI_DIR, "index.html")) ? false : "dist/ui is not built (npm run build)",
}, async () => {
  const plain = await t.call("GET", "/ui/", { auth: null });
  assert.equal(plain.status, 200);
  assert.equal(connectSrc(plain.headers.get("content-security-policy") ?? ""), "connect-src 'self'");

  const cfg = defaultConfig();
  cfg.local.ui_engines = ["http://127.0.0.1:8081", "https://Engine.Example.org:443/"];
  const api = await startApi(t.engine, { port: 0, scarConfig: cfg });
  try {
    for (const file of ["", "app.js"]) {
      const r = await fetch(`${api.url}/ui/${file}`);
      assert.equal(r.status, 200);
      const csp = r.headers.get("content-security-policy") ?? "";
      assert.equal(
        connectSrc(csp),
        "connect-src 'self' http://127.0.0.1:8081 https://engine.example.org",
        "as the browser writes origins: lower case, no default port, no slash",
      );
      assert.match(csp, /default-src 'none'; script-src 'self'; style-src 'self'/);
    }
  } finally {
    await api.close();
  }
});

test("local.ui_engines that is not a list of origins is refused, naming the key", async () => {
  assert.deepEqual(uiEngines(undefined), []);
  assert.deepEqual(uiEngines([]), []);
  assert.deepEqual(uiEngines(["http://[::1]:9000"]), ["http://[::1]:9000"]);
  const bad: [unknown, RegExp][] = [
    ["http://127.0.0.1:8081", /not "http:\/\/127\.0\.0\.1:8081"/],
    [["*"], /'\*' is not a URL/],
    [["127.0.0.1:8081"], /'127\.0\.0\.1:8081' is not a URL/],
    [["engine:8081"], /'engine:8081' is not http:\/\/ or https:\/\//],
    [["ftp://host:21"], /not http:\/\/ or https:\/\//],
    [
      ["http://host:8081/ui/"],
      /'http:\/\/host:8081\/ui\/' is not one \(scheme:\/\/host\[:port\], nothing more\)/,
    ],
    [["http://host:8081?x=1"], /is not one/],
    [["http://user:pw@host:8081"], /is not one/],
    [["http://evil;script-src:1"], /is not one/],
    [["http://a,b:1"], /is not one/],
    [[8081], /not 8081/],
  ];
  for (const [value, why] of bad) {
    assert.throws(
      () => uiEngines(value),
      (e: unknown) =>
        e instanceof UiEnginesError &&
        /^scar\.cfg: local\.ui_engines must be a list of origins like "http:\/\/host:8080", /.test(
          e.message,
        ) &&
        why.test(e.message),
      JSON.stringify(value),
    );
  }
  const cfg = defaultConfig();
  cfg.local.ui_engines = ["http://host:8081/path"];
  await assert.rejects(startApi(t.engine, { port: 0, scarConfig: cfg }), UiEnginesError);
});
