/**
 * scar run against a real engine: Ctrl-C while waiting for a sync run, and SCAR 1.x's event launcher
 * (`scar run -es BUCKET NAME`) for a function created without -es.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { waitFor } from "../engine/api-harness.js";
import { busyboxRootfs } from "../engine/images/helpers.js";
import { bin, useCliWorkspace } from "./harness.js";

const { dir, cfgDir, ok, importImage } = useCliWorkspace("scar-run-", { target: "local" });
const IMAGE = "scar-test/run:1";

before(async () => {
  const root = join(dir, "img");
  busyboxRootfs(root, ["sh", "echo", "cat", "sleep", "wc", "basename", "test", "["]);
  await importImage(root, IMAGE, ["ENV PATH=/bin"]);
});

async function jobOf(fn: string, status: string): Promise<{ id: string } | undefined> {
  const res = JSON.parse(await ok(["jobs", "ls", "-n", fn, "--status", status, "--json"]));
  return res.jobs[0];
}

test("Ctrl-C during a sync scar run: exit 130, the request id and how to follow it; the job runs on", async () => {
  // Long enough that the job still runs when SIGINT arrives on a loaded machine (each `jobs` poll
  // took seconds there, and with 8 s the run had already ended: exit 0).
  writeFileSync(join(dir, "wait.sh"), "echo started\nsleep 20\necho finished\n");
  await ok(["init", "-n", "slow", "-s", "wait.sh", "-i", IMAGE]);
  const child = spawn(bin, ["run", "slow"], {
    cwd: dir,
    env: { ...process.env, SCAR_CONFIG_FOLDER: cfgDir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => {
    stdout += d;
  });
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const running = await waitFor("the sync job to run", () => jobOf("slow", "running"), 30_000, 100);
  child.kill("SIGINT");
  assert.equal(await exited, 130, stderr);
  assert.equal(stdout, "");
  assert.match(stderr, /Stopped waiting; the function goes on running\./);
  assert.match(stderr, new RegExp(`^Request Id: ${running.id}$`, "m"));
  assert.match(stderr, new RegExp(`Follow it with: scar log -n slow -ri ${running.id}`));
  // The job was not stopped with the CLI: it finishes, and its log is where the message says.
  await waitFor("the job to finish", () => jobOf("slow", "succeeded"), 90_000, 500);
  assert.match(await ok(["log", "-n", "slow", "-ri", running.id]), /finished/);
});

test("SCAR 1.x's scar run -es BUCKET NAME, for a function created without -es: results go to BUCKET/output", async () => {
  writeFileSync(
    join(dir, "measure.sh"),
    'wc -c < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").size"\n',
  );
  await ok(["init", "-n", "measure", "-s", "measure.sh", "-i", IMAGE]);
  writeFileSync(join(dir, "five.txt"), "12345");
  await ok(["put", "-b", "legacy-bucket/input", "-p", join(dir, "five.txt")]);
  const launched = JSON.parse(await ok(["run", "--wait", "--json", "-es", "legacy-bucket", "measure"]));
  assert.equal(launched.Succeeded, 1);
  const keys = (await ok(["ls", "-b", "legacy-bucket/output"])).split("\n").filter(Boolean);
  assert.deepEqual(keys, ["output/five.txt.size"]);
  const out = join(dir, "got");
  await ok(["get", "-b", "legacy-bucket/output", "-p", out]);
  assert.equal(readFileSync(join(out, "output/five.txt.size"), "utf8").trim(), "5");
  // The same file sent by -ib (not SCAR 1.x's launcher): a function without outputs keeps none.
  const plain = JSON.parse(await ok(["run", "--wait", "--json", "-ib", "legacy-bucket/input", "measure"]));
  assert.equal(plain.Succeeded, 1);
  assert.deepEqual((await ok(["ls", "-b", "legacy-bucket/output"])).split("\n").filter(Boolean), keys);
});
