/**
 * While a job runs, its workspace (input and output folders, given to the image's user) and its run
 * folder (the container's bundle) are closed to every other host user, including the one whose uid
 * the container runs as, even when the data folder's top has been opened. The engine runs as
 * `scar serve` runs it: umask 077. Real engine, crun/runc, nothing mocked.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { usePrivateUmask } from "../../src/engine/data-dir.js";
import { Engine } from "../../src/engine/engine.js";
import { parseFdl } from "../../src/fdl/index.js";
import { waitFor } from "../engine/api-harness.js";
import { type Fixture, makeFixture } from "../engine/runtime/fixtures.js";

const root = fs.mkdtempSync(join(tmpdir(), "scar-perms-work-"));
fs.chmodSync(root, 0o755); // other users may walk down to the data folder
const data = join(root, "data");
const IMAGE = "localhost/scar-test/busybox-app:1";
let fixture: Fixture;
let engine: Engine;
let previousUmask: number;

before(async () => {
  fixture = makeFixture(); // the image's own files, with their own modes
  previousUmask = process.umask();
  usePrivateUmask();
  engine = await Engine.start({ dataDir: data, s3Port: 0, concurrency: 1 });
  await engine.images.import(fixture.base, {
    format: "rootfs",
    tag: IMAGE,
    changes: ["ENV PATH=/bin", "USER app"],
  });
});
after(async () => {
  await engine.close();
  fixture.cleanup();
  fs.rmSync(root, { recursive: true, force: true });
  process.umask(previousUmask);
});

function as(uid: number, ...argv: string[]) {
  return spawnSync("setpriv", [`--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "--", ...argv], {
    encoding: "utf8",
  });
}

function denied(uid: number, what: string, ...argv: string[]): void {
  const r = as(uid, ...argv);
  assert.notEqual(r.status, 0, `uid ${uid} could ${what}: ${r.stdout}`);
  assert.match(r.stderr, /Permission denied/, `${what}: ${r.stderr}`);
}

test("a running job's workspace and bundle are unreachable for other users, its image's user included", async () => {
  const dir = fs.mkdtempSync(join(root, "fdl-"));
  // waits for the test's go-ahead in its input folder, then writes its output as the image's user
  fs.writeFileSync(
    join(dir, "script.sh"),
    'in=$(dirname "$0")\nwhile [ ! -e "$in/go" ]; do sleep 0.05; done\nid -u > "$TMP_OUTPUT_DIR/who"\ncat "$TMP_OUTPUT_DIR/who"\n',
  );
  // a container of its own (its input and output folders are the workspace's, bind-mounted)
  const yaml = `functions:\n  aws:\n  - lambda:\n      name: waiter\n      memory: 128\n      init_script: script.sh\n      container:\n        image: ${IMAGE}\n        isolation: invocation\n`;
  fs.writeFileSync(join(dir, "fn.yaml"), yaml);
  await engine.deploy(parseFdl(join(dir, "fn.yaml"), yaml).functions[0]!);
  const running = engine.invoke("waiter", {}, { sync: true });

  const work = join(data, "work");
  const ws = await waitFor("the job's workspace", () => {
    const [id] = fs.existsSync(work) ? fs.readdirSync(work) : [];
    return id && fs.existsSync(join(work, id, "output")) ? join(work, id) : undefined;
  });
  const runs = join(data, "runtime", "runs");
  const run = await waitFor("the job's run folder", () => {
    const r = fs.readdirSync(runs).find((n) => fs.existsSync(join(runs, n, "config.json")));
    return r ? join(runs, r) : undefined;
  });
  try {
    fs.chmodSync(data, 0o755); // someone opens the top folder
    for (const uid of [65534, 1000]) {
      denied(uid, "list the workspace", "ls", ws);
      denied(uid, "list the input folder", "ls", join(ws, "input"));
      denied(uid, "write into the output folder", "touch", join(ws, "output", "planted"));
      denied(uid, "read the run's bundle", "cat", join(run, "config.json"));
      denied(uid, "read the job database", "cat", join(data, "jobs", "jobs.db"));
    }
    for (const p of [work, ws, join(data, "runtime"), runs, run])
      assert.equal(fs.statSync(p).mode & 0o077, 0, `${p} is private`);
    const input = fs.statSync(join(ws, "input"));
    assert.deepEqual(
      [input.uid, input.gid, input.mode & 0o777],
      [1000, 1000, 0o700],
      "the input is the image user's",
    );
  } finally {
    fs.chmodSync(data, 0o700);
    fs.writeFileSync(join(ws, "input", "go"), "");
  }
  const { job, result } = await running;
  assert.equal(job.status, "succeeded", engine.jobs.log(job.id) ?? "");
  assert.equal(result?.output.toString(), "1000\n", "the image's user wrote its output");
});
