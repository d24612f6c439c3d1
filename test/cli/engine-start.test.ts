/** How the CLI starts the local engine: once for two commands at a time, on free ports when the configured ones are taken. */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { runScar, writeScarCfg } from "./harness.js";

const scar = (cfgDir: string, args: string[]) => runScar(args, { cfgDir, timeout: 90_000 });

function setup(local: Record<string, unknown>) {
  const dir = mkdtempSync(join(tmpdir(), "scar-start-"));
  writeScarCfg(join(dir, "cfg"), { data_dir: join(dir, "data"), ...local });
  return { dir, cfg: join(dir, "cfg"), data: join(dir, "data") };
}

test("two commands at once start one engine and both use it; scar.cfg's insecure registries reach it", async () => {
  const t = setup({ port: 0, s3_port: 0, insecure_registries: ["registry.lab:5000"] });
  try {
    const [a, b] = await Promise.all([scar(t.cfg, ["ls", "--json"]), scar(t.cfg, ["ls", "--json"])]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.equal((a.stderr + b.stderr).match(/Local engine started/g)?.length, 1, a.stderr + b.stderr);
    assert.deepEqual(JSON.parse(a.stdout), { Functions: [] });
    const log = readFileSync(join(t.data, "engine.log"), "utf8");
    assert.equal(log.match(/^scar engine running$/gm)?.length, 1, log);
    assert.match(log, /scar serve .* --insecure-registry registry\.lab:5000$/m);
  } finally {
    await scar(t.cfg, ["engine", "stop"]);
    rmSync(t.dir, { recursive: true, force: true });
  }
});

test("a configured port that is taken: the engine starts on free ports and says so", async () => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
  const port = (blocker.address() as { port: number }).port;
  const t = setup({ port, s3_port: 0 });
  try {
    const r = await scar(t.cfg, ["engine", "start"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `The configured ports \\(scar.cfg local.port ${port}, local.s3_port 0\\) are taken: using free ones`,
      ),
    );
    const info = JSON.parse(readFileSync(join(t.data, "engine.json"), "utf8"));
    assert.notEqual(info.api, `http://127.0.0.1:${port}`);
    assert.equal(await (await fetch(`${info.api}/health`)).text(), "Ok");
  } finally {
    await scar(t.cfg, ["engine", "stop"]);
    blocker.close();
    rmSync(t.dir, { recursive: true, force: true });
  }
});
