import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { defaultConfig, type ScarConfigFile } from "../../src/config/defaults.js";

const bin = new URL("../../../bin/scar", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "scar-serve-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("scar serve starts the engine on free ports, writes 0600 credentials, answers, and stops on SIGTERM", async () => {
  const dataDir = join(dir, "data");
  const child = spawn(bin, ["serve", "--data-dir", dataDir, "--port", "0", "--s3-port", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (b) => {
    out += b;
  });
  let err = "";
  child.stderr.on("data", (b) => {
    err += b;
  });
  const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
  for (let i = 0; i < 600 && !/functions:/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(out, /^scar engine running$/m, err);
  const apiUrl = /API: +(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
  const s3Url = /object store: +(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
  assert.ok(apiUrl && s3Url, out);
  assert.equal(await (await fetch(`${apiUrl}/health`)).text(), "Ok");
  const creds = join(dataDir, "credentials");
  assert.ok(existsSync(creds));
  assert.equal(statSync(creds).mode & 0o777, 0o600);
  const { admin } = JSON.parse(readFileSync(creds, "utf8"));
  const auth = `Basic ${Buffer.from(`${admin.user}:${admin.password}`).toString("base64")}`;
  const list = await fetch(`${apiUrl}/system/services`, { headers: { authorization: auth } });
  assert.equal(list.status, 200);
  assert.deepEqual(await list.json(), []);
  // The object store answers S3 clients (an unsigned request is refused the S3 way).
  const s3 = await fetch(`${s3Url}/`);
  assert.equal(s3.status, 403);
  assert.match(await s3.text(), /<Code>(AccessDenied|MissingSecurityHeader|SignatureDoesNotMatch)<\/Code>/);
  child.kill("SIGTERM");
  assert.equal(await exited, 0);
});

test("scar serve refuses a warm-environment setting of scar.cfg that is not a number in range, touching nothing", async () => {
  const { code, err, dataDir } = await serveWithConfig("refused", (cfg) => {
    cfg.local.warm_memory_percent = 150;
  });
  assert.equal(code, 1, err);
  assert.match(err, /scar\.cfg: local\.warm_memory_percent must be a number from 1 to 100, not 150/);
  assert.equal(existsSync(dataDir), false, "no data folder was made");
});

test("scar serve refuses a local.ui_engines of scar.cfg that is not a list of origins, naming the key", async () => {
  const { code, err, dataDir } = await serveWithConfig("refused-ui-engines", (cfg) => {
    cfg.local.ui_engines = ["http://127.0.0.1:8081/ui/"];
  });
  assert.equal(code, 1, err);
  assert.match(err, /scar\.cfg: local\.ui_engines must be a list of origins like "http:\/\/host:8080"/);
  assert.match(err, /'http:\/\/127\.0\.0\.1:8081\/ui\/' is not one/);
  assert.equal(existsSync(dataDir), false, "no data folder was made");
});

/** `scar serve` with a scar.cfg of the defaults changed by `change`, into data folder `name`, until it exits. */
async function serveWithConfig(name: string, change: (cfg: ScarConfigFile) => void) {
  const cfgDir = mkdtempSync(join(dir, "cfg-"));
  const cfg = defaultConfig();
  change(cfg);
  writeFileSync(join(cfgDir, "scar.cfg"), JSON.stringify(cfg));
  const dataDir = join(dir, name);
  const child = spawn(bin, ["serve", "--data-dir", dataDir, "--port", "0", "--s3-port", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, SCAR_CONFIG_FOLDER: cfgDir },
  });
  let err = "";
  child.stderr.on("data", (b) => {
    err += b;
  });
  const code = await new Promise<number | null>((res) => child.on("exit", (c) => res(c)));
  return { code, err, dataDir };
}
