/**
 * The engine's data folder is its user's alone: image layers keep their setuid programs (containers
 * need them) but no other host user can reach them, and the credentials, objects, job database and
 * image blobs are private files, even if someone later opens the top folder. Real `scar` processes;
 * "another user" is `nobody`, run with setpriv.
 */
import assert from "node:assert/strict";
import { type SpawnSyncReturns, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { craftTar, tempDir } from "../engine/images/helpers.js";

const bin = new URL("../../../bin/scar", import.meta.url).pathname;
const work = tempDir("scar-perms-");
// Other users may walk down to the data folders: only the data folders' own modes keep them out.
fs.chmodSync(work, 0o755);
after(() => fs.rmSync(work, { recursive: true, force: true }));

const NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"];

function asNobody(...argv: string[]): SpawnSyncReturns<string> {
  return spawnSync(NOBODY[0]!, [...NOBODY.slice(1), ...argv], { encoding: "utf8" });
}

/** `nobody` is refused `argv` (on `path`) with EACCES. */
function nobodyDenied(what: string, ...argv: string[]): void {
  const r = asNobody(...argv);
  assert.notEqual(r.status, 0, `nobody could ${what}: ${r.stdout}`);
  assert.match(r.stderr, /Permission denied/, `${what}: ${r.stderr}`);
}

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, SCAR_CONFIG_FOLDER: join(work, "cfg") };
  delete e.NODE_EXTRA_CA_CERTS;
  delete e.SCAR_DATA_DIR;
  return e;
}

function scar(...args: string[]): SpawnSyncReturns<string> {
  // the umask most shells have: what the data folder gets must not depend on it
  return spawnSync(bin, args, { encoding: "utf8", env: env() });
}

const mode = (p: string) => fs.lstatSync(p).mode & 0o7777;

/** Every file and folder under `dir` (not `dir` itself), not following symlinks. */
function walk(dir: string, skip: (p: string) => boolean = () => false): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (skip(p)) continue;
    out.push(p);
    if (e.isDirectory()) out.push(...walk(p, skip));
  }
  return out;
}

test("scar image import into a new data folder: the setuid program of a layer keeps its bits, and nobody can reach it", () => {
  const data = join(work, "new-data");
  const layer = craftTar([
    { name: "bin/", type: "dir", mode: 0o755 },
    { name: "bin/rootsh", data: "#!/bin/sh\nid\n", mode: 0o4755, uid: 0, gid: 0 },
    { name: "etc/", type: "dir", mode: 0o755 },
    { name: "etc/passwd", data: "root:x:0:0:root:/root:/bin/sh\n", mode: 0o644 },
  ]);
  const tar = join(work, "suid-rootfs.tar");
  fs.writeFileSync(tar, layer);
  const r = scar("image", "import", tar, "--tag", "suid:1", "--format", "rootfs", "--data-dir", data);
  assert.equal(r.status, 0, r.stderr);

  const layers = join(data, "images", "layers");
  const [chain] = fs.readdirSync(layers);
  const suid = join(layers, chain!, "fs", "bin", "rootsh");
  assert.equal(mode(suid), 0o4755, "the layer keeps its setuid bit (images rely on it inside)");
  assert.equal(fs.statSync(suid).uid, 0);
  assert.equal(mode(data), 0o700, "the new data folder is the engine user's alone");
  assert.equal(mode(layers), 0o700, "so is the folder holding the unpacked layers");
  assert.equal(mode(join(data, "images", "tmp")), 0o700, "and the one where layers are unpacked");

  nobodyDenied("list the data folder", "ls", data);
  nobodyDenied("stat the setuid program", "stat", suid);
  nobodyDenied("run the setuid program", suid);

  // Someone opens the top folder later: the layers, blobs and the image index stay closed.
  fs.chmodSync(data, 0o755);
  nobodyDenied("stat the setuid program under an opened data folder", "stat", suid);
  nobodyDenied("run the setuid program under an opened data folder", suid);
  const files = walk(data, (p) => p.startsWith(`${layers}/`));
  assert.ok(files.some((p) => p.includes("/blobs/sha256/")));
  for (const p of files) {
    assert.equal(mode(p) & 0o077, 0, `${p} is private (mode ${mode(p).toString(8)})`);
    if (fs.lstatSync(p).isFile()) nobodyDenied(`read ${p}`, "cat", p);
  }
});

test("a data folder open to others is tightened to 0700, with a notice; one owned by another user is refused", () => {
  const open = join(work, "open-data");
  fs.mkdirSync(join(open, "images", "layers"), { recursive: true, mode: 0o755 });
  fs.chmodSync(open, 0o755);
  fs.chmodSync(join(open, "images", "layers"), 0o775); // an older scar's, or a chmod
  const r = scar("image", "ls", "--data-dir", open);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /the data folder .*open-data was open to other users \(mode 0755\); it is now 0700/);
  assert.equal(mode(open), 0o700);
  assert.equal(mode(join(open, "images", "layers")), 0o700, "the layers' folder is closed too");
  const again = scar("image", "ls", "--data-dir", open);
  assert.equal(again.stderr, "", "said once: a private folder needs no notice");

  const foreign = join(work, "foreign-data");
  fs.mkdirSync(foreign, { mode: 0o700 });
  fs.chownSync(foreign, 65534, 65534);
  for (const args of [
    ["image", "ls", "--data-dir", foreign],
    ["store", "serve", "--data-dir", foreign, "--port", "0"],
    ["serve", "--data-dir", foreign, "--port", "0", "--s3-port", "0"],
  ]) {
    const refused = scar(...args);
    assert.equal(refused.status, 1, `${args[0]}: ${refused.stdout}${refused.stderr}`);
    assert.match(refused.stderr, /cannot use the data folder: .*foreign-data belongs to uid 65534/);
    assert.match(refused.stderr, /chown -R 0 .*foreign-data; chmod 700 .*foreign-data/);
  }
  assert.deepEqual(fs.readdirSync(foreign), [], "nothing was written into it");

  // and another user pointing scar at the engine's folder is told why it cannot
  if (asNobody("test", "-r", bin).status === 0) {
    const r = asNobody("env", "HOME=/nonexistent", bin, "image", "ls", "--data-dir", open);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot use the data folder: .*open-data belongs to root, and this is uid 65534/);
    assert.match(r.stderr, /run scar as root \(sudo\)/);
    const inside = asNobody("env", "HOME=/nonexistent", bin, "image", "ls", "--data-dir", join(open, "x"));
    assert.match(inside.stderr, /cannot use the data folder .*open-data\/x: permission denied/);
    assert.match(inside.stderr, /run scar as that user/);
  }
});

test("scar serve creates its data folder 0700 and every file in it private: credentials, job database, objects", async () => {
  const data = join(work, "serve-data");
  const child = spawn(bin, ["serve", "--data-dir", data, "--port", "0", "--s3-port", "0"], {
    env: env(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((res) => child.once("exit", (code) => res(code)));
  try {
    const info = await new Promise<{ s3: string }>((resolve, reject) => {
      const poll = setInterval(() => {
        if (child.exitCode !== null) {
          clearInterval(poll);
          reject(new Error(`scar serve ended: ${stderr}`));
        }
        try {
          resolve(JSON.parse(fs.readFileSync(join(data, "engine.json"), "utf8")));
          clearInterval(poll);
        } catch {}
      }, 50);
    });
    const creds = JSON.parse(fs.readFileSync(join(data, "credentials"), "utf8"));
    const s3 = new S3Client({
      endpoint: info.s3,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: creds.s3.accessKeyId, secretAccessKey: creds.s3.secretAccessKey },
    });
    await s3.send(new CreateBucketCommand({ Bucket: "secret" }));
    await s3.send(new PutObjectCommand({ Bucket: "secret", Key: "dir/report.txt", Body: "confidential" }));
    s3.destroy();
  } finally {
    child.kill("SIGTERM");
  }
  assert.equal(await exited, 0, stderr);

  assert.equal(mode(data), 0o700);
  fs.chmodSync(data, 0o755); // a later chmod of the top folder exposes nothing beneath it
  const all = walk(data);
  for (const f of [
    "credentials",
    "jobs/jobs.db",
    "functions",
    "images/layers",
    "store/secret/dir/report.txt",
  ])
    assert.ok(
      all.some((p) => p === join(data, f)),
      `${f} is there (found: ${all.map((p) => p.slice(data.length)).join(" ")})`,
    );
  for (const p of all) {
    assert.equal(mode(p) & 0o077, 0, `${p} is private (mode ${mode(p).toString(8)})`);
    if (fs.lstatSync(p).isFile()) nobodyDenied(`read ${p}`, "cat", p);
  }
});

test("scar doctor reports a data folder open to others (warn, with the chmod) and one owned by another user (fail)", () => {
  const doctor = (dir: string) => {
    const r = spawnSync(bin, ["doctor", "--json", "--no-container"], {
      encoding: "utf8",
      env: { ...env(), SCAR_DATA_DIR: dir },
    });
    const report = JSON.parse(r.stdout);
    return {
      status: r.status,
      report,
      check: report.checks.find((c: { name: string }) => c.name === "data folder"),
    };
  };
  const dir = join(work, "doctor-data");
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.chmodSync(dir, 0o750);
  const open = doctor(dir);
  assert.equal(open.check.status, "warn");
  assert.match(open.check.value, /doctor-data is open to other users \(mode 0750\)/);
  assert.equal(open.check.fix, `chmod 700 ${dir}`);
  assert.equal(mode(dir), 0o750, "doctor only looks");

  fs.chmodSync(dir, 0o700);
  assert.equal(doctor(dir).check.status, "ok");

  // private, but in a folder others may write in (no sticky bit): they could swap it for theirs
  const shared = join(work, "shared");
  fs.mkdirSync(join(shared, "data"), { recursive: true, mode: 0o700 });
  fs.chmodSync(shared, 0o777);
  const swappable = doctor(join(shared, "data"));
  assert.equal(swappable.check.status, "warn");
  assert.match(swappable.check.value, /shared may be changed by other users \(mode 0777\)/);
  fs.chmodSync(shared, 0o1777); // as /tmp: only an entry's owner may rename it
  assert.equal(doctor(join(shared, "data")).check.status, "ok");

  fs.chownSync(dir, 65534, 65534);
  const foreign = doctor(dir);
  assert.equal(foreign.check.status, "fail");
  assert.match(foreign.check.value, /belongs to uid 65534/);
  assert.equal(foreign.report.ok, false);
  assert.equal(foreign.status, 1);
});
