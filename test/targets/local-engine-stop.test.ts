/**
 * `scar engine stop` with an engine.json left by an engine killed with SIGKILL: its pid may belong
 * to another process by now, which must not get the engine's SIGTERM.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ENGINE_FILE, stopEngine } from "../../src/targets/local-engine.js";

test("engine stop leaves alone a process that took a dead engine's pid", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "scar-stop-"));
  const other = spawn("sleep", ["30"], { stdio: "ignore" });
  try {
    const info = { pid: other.pid, api: "http://127.0.0.1:1", s3: "http://127.0.0.1:1", dataDir };
    writeFileSync(join(dataDir, ENGINE_FILE), JSON.stringify(info));
    assert.equal(await stopEngine(dataDir, 2000), false, "no engine was running");
    assert.equal(other.exitCode, null);
    assert.equal(other.signalCode, null, "the other process got no signal");
    assert.doesNotThrow(() => process.kill(other.pid!, 0), "the other process is alive");
  } finally {
    other.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  }
});
