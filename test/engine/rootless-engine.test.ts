/**
 * The engine as an ordinary user (issue 20): `scar image import` and `scar serve` run as nobody (the
 * test drops to it with setpriv), with the data folder under nobody's home and the default-style
 * ports above 1024 left to the kernel (0). A deployed function runs for an upload (its output lands,
 * its log says what a rootless engine does not limit), for a synchronous /run, is killed at its time
 * limit with every process of it, and a job runs again and finishes after the engine is killed -9 in
 * the middle of it and started again.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import {
  asNobody,
  bin,
  EXPECT,
  layeredArchive,
  NOBODY,
  NOBODY_UID,
  nobodyEnv,
  nobodyRoot,
  rootlessSkip,
} from "./rootless-harness.js";
import { hostProcesses } from "./runtime/fixtures.js";

const skip = rootlessSkip();
const place = skip ? undefined : nobodyRoot("scar-rootless-engine-");
let engine: Served | undefined;
after(async () => {
  if (engine) {
    engine.child.kill("SIGTERM");
    await engine.exited;
  }
  place?.cleanup();
});

interface Served {
  child: ChildProcess;
  api: string;
  s3: string;
  exited: Promise<unknown>;
  log: () => string;
}

/** `scar serve` as nobody, HOME=home (data folder ~/.scar/data), free ports. */
async function serve(home: string): Promise<Served> {
  const child = spawn(NOBODY[0]!, [...NOBODY.slice(1), bin, "serve", "--port", "0", "--s3-port", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: nobodyEnv(home),
    cwd: home,
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (b) => {
    out += b;
  });
  child.stderr!.on("data", (b) => {
    err += b;
  });
  const exited = new Promise((res) => child.on("exit", res));
  for (let i = 0; i < 6000 && !/functions:/.test(out) && child.exitCode === null; i++)
    await new Promise((r) => setTimeout(r, 50));
  const api = /API: +(http:\/\/\S+)/.exec(out)?.[1];
  const s3 = /object store: +(http:\/\/\S+)/.exec(out)?.[1];
  if (!api || !s3) {
    // (a child left running would keep this test file's process alive)
    child.kill("SIGKILL");
    throw new Error(`scar serve did not start as nobody (exit ${child.exitCode}): ${out}${err}`);
  }
  return { child, api, s3, exited, log: () => err };
}

async function until<T>(what: string, f: () => Promise<T | undefined>, tries = 1200): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await f();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test("a rootless engine (nobody): deploy, upload -> output, sync run, kill -9 mid-job and restart", {
  skip,
}, async () => {
  const home = place!.dir("home");
  const archive = join(place!.root, "layers.tar");
  writeFileSync(archive, await layeredArchive(), { mode: 0o644 });
  const imported = asNobody(home, [bin, "image", "import", archive, "-t", "localhost/rootless/layers:1"]);
  assert.equal(imported.status, 0, imported.stderr);
  const dataDir = join(home, ".scar", "data");
  assert.equal(statSync(dataDir).uid, NOBODY_UID, "the data folder is under the user's home, the user's");

  engine = await serve(home);
  // with a systemd user session (the cgroup v2 VM's user) the limits hold, else the log says they do not
  const said = EXPECT.limits
    ? /rootless: cpu, memory and pids limits hold \(cgroup \S+scar-engine-\d+\.scope, delegated to this user\); no disk limit/
    : /rootless: no memory, pids or cpu limits .* no disk limit/;
  assert.match(engine.log(), said, "said once at start");
  const creds = JSON.parse(readFileSync(join(dataDir, "credentials"), "utf8"));
  const auth = `Basic ${Buffer.from(`${creds.admin.user}:${creds.admin.password}`).toString("base64")}`;
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${engine!.api}${path}`, { ...init, headers: { authorization: auth, ...(init.headers ?? {}) } });
  const deploy = async (name: string, script: string, scar?: object) => {
    const r = await api("/system/services", {
      method: "POST",
      body: JSON.stringify({
        name,
        image: "localhost/rootless/layers:1",
        memory: "64Mi",
        script,
        ...(scar ? { scar } : {}),
        input: [{ storage_provider: "minio", path: `${name}/in` }],
        output: [{ storage_provider: "minio", path: `${name}/out` }],
      }),
    });
    assert.equal(r.status, 201, await r.text());
  };
  // what the container sees: root of its namespace, the upper layer's whiteout, and the owner of a
  // file uid 1000 owns in the tar: 1000 with subuid ranges (the engine gave the layer its owners), else
  // root (the user)
  await deploy(
    "shout",
    'n=$(basename "$INPUT_FILE_PATH"); { tr a-z A-Z < "$INPUT_FILE_PATH"; id -u; stat -c %u /etc/owned; cat /etc/issue 2>/dev/null || echo no-issue; } > "$TMP_OUTPUT_DIR/$n"\n',
  );
  const owned = EXPECT.mapping === "ranges" ? 1000 : 0;
  let s3 = new S3Client({
    endpoint: engine.s3,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: creds.s3,
    maxAttempts: 1,
  });
  const object = (key: string) =>
    s3
      .send(new GetObjectCommand({ Bucket: key.split("/")[0]!, Key: key.slice(key.indexOf("/") + 1) }))
      .then((o) => o.Body!.transformToString())
      .catch(() => undefined);

  await s3.send(new PutObjectCommand({ Bucket: "shout", Key: "in/a.txt", Body: "hello" }));
  assert.equal(
    await until("shout/out/a.txt", () => object("shout/out/a.txt")),
    `HELLO0\n${owned}\nno-issue\n`,
  );
  const jobs = (await (await api("/system/jobs?service=shout")).json()) as { jobs: { id: string }[] };
  const log = await (await api(`/system/jobs/${jobs.jobs[0]!.id}/log`)).text();
  const note = log.split("\n").filter((l) => said.test(l));
  assert.equal(note.length, 1, `one line in the job's log:\n${log}`);
  assert.match(note[0]!, /WARNING .*no disk limit.*the time limit holds/);

  const sync = await api("/run/shout", { method: "POST", body: Buffer.from("sync me").toString("base64") });
  assert.equal(sync.status, 200);
  assert.match(sync.headers.get("x-scar-output") ?? "", /^file:/);
  assert.equal(Buffer.from(await sync.text(), "base64").toString(), `SYNC ME0\n${owned}\nno-issue\n`);
  // both ran in one warm execution environment, started rootless for the first
  const starts = (
    (await (await api("/system/jobs?service=shout")).json()) as {
      jobs: { environment?: { start: string; id: string } | null }[];
    }
  ).jobs.map((j) => j.environment?.start);
  assert.deepEqual(starts.sort(), ["cold", "warm"]);

  // the memory limit (64Mi) holds where a cgroup is delegated: the kernel kills dd, the script fails
  // for it (with exit 0 it would succeed, its log warning of the kill: the runtime README's rule), the
  // log says why. Without a limit dd only fills the container's 64 MiB /dev/shm and fails (exit 1).
  await deploy(
    "hog",
    'dd if=/dev/zero of=/dev/shm/fill bs=1M count=100 2>/dev/null; [ $? -lt 128 ] || exit 3; echo survived > "$TMP_OUTPUT_DIR/x"\n',
  );
  // (a synchronous run: its failure is final, no retries)
  await (await api("/run/hog", { method: "POST", body: Buffer.from("h").toString("base64") })).arrayBuffer();
  const hogJob = (
    (await (await api("/system/jobs?service=hog")).json()) as { jobs: { id: string; status: string }[] }
  ).jobs[0]!;
  const hogLog = await (await api(`/system/jobs/${hogJob.id}/log`)).text();
  if (EXPECT.limits) {
    assert.notEqual(hogJob.status, "succeeded", hogLog);
    assert.match(hogLog, /ran out of memory/, hogLog);
  } else {
    assert.equal(hogJob.status, "succeeded", `no memory limit holds rootless here: ${hogLog}`);
    assert.doesNotMatch(hogLog, /ran out of memory/);
  }

  // the time limit holds rootless: every process of the container is killed at it
  await deploy("sleepy", "sleep 4711 & sleep 4712; echo never\n", { timeout: 2, timeout_threshold: 0 });
  await s3.send(new PutObjectCommand({ Bucket: "sleepy", Key: "in/c.txt", Body: "zz" }));
  const timedOut = await until("the sleepy job to end", async () => {
    const r = (await (await api("/system/jobs?service=sleepy")).json()) as {
      jobs: { id: string; status: string }[];
    };
    const j = r.jobs[0];
    return j && j.status !== "queued" && j.status !== "running" ? j : undefined;
  });
  const sleepyLog = await (await api(`/system/jobs/${timedOut.id}/log`)).text();
  assert.match(sleepyLog, /Container execution timed out/, sleepyLog);
  assert.doesNotMatch(sleepyLog, /never/);
  assert.deepEqual(hostProcesses("sleep 471"), [], "no process of the container outlived its time limit");

  // killed -9 while a job runs: at the next start the job runs again and its output lands
  await deploy("slow", 'echo started; sleep 3; cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"\n');
  await s3.send(new PutObjectCommand({ Bucket: "slow", Key: "in/b.txt", Body: "survives" }));
  await until("the slow job to run", async () => {
    const r = (await (await api("/system/jobs?service=slow&status=running")).json()) as { jobs: unknown[] };
    return r.jobs.length > 0 ? true : undefined;
  });
  s3.destroy();
  engine.child.kill("SIGKILL");
  await engine.exited;
  engine = await serve(home);
  s3 = new S3Client({
    endpoint: engine.s3,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: creds.s3,
    maxAttempts: 1,
  });
  assert.equal(await until("slow/out/b.txt", () => object("slow/out/b.txt")), "survives");
  const after = (await (await api("/system/jobs?service=slow")).json()) as {
    jobs: { status: string; attemptCount?: number }[];
  };
  assert.equal(after.jobs.length, 1);
  assert.equal(after.jobs[0]!.status, "succeeded");
  s3.destroy();
  engine.child.kill("SIGTERM");
  await engine.exited;
  engine = undefined;
  // the runs' folders of both engines are gone (the killed one's swept at the restart)
  const state = join(dataDir, "runtime");
  assert.deepEqual([...readdirSync(join(state, "runs")), ...readdirSync(join(state, "trash"))], []);
});
