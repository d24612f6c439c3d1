/**
 * The runs' disks (runtime/disk.ts: an ext4 image on a loop device each, pooled) after the engine
 * is killed with SIGKILL while runs use them and one waits in the pool: the next start leaves no loop
 * device attached to one of them, no mount of them in any mount namespace and none of their files;
 * a clean stop then detaches and deletes every disk of its own. The engine runs as `scar serve` in a
 * child process, as in test/engine/crash.test.ts.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { ImageStore } from "../../src/engine/images/index.js";
import { waitFor } from "../engine/api-harness.js";
import { makeFixture } from "../engine/runtime/fixtures.js";

const bin = new URL("../../../bin/scar", import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), "scar-faults-disk-crash-"));
const dataDir = join(root, "data");
const disksDir = join(dataDir, "runtime", "disks");
const IMAGE = "localhost/scar-test/busybox:disk-crash";
const fixture = makeFixture();
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  fixture.cleanup();
  rmSync(root, { recursive: true, force: true });
});

interface Served {
  child: ChildProcess;
  api: string;
  exited: Promise<unknown>;
}

async function serve(): Promise<Served> {
  const child = spawn(bin, ["serve", "--data-dir", dataDir, "--port", "0", "--s3-port", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (b) => {
    out += b;
  });
  child.stderr!.resume();
  const exited = new Promise((res) => child.on("exit", res));
  const api = await waitFor("scar serve to start", () => /API: +(http:\/\/\S+)/.exec(out)?.[1], 60_000);
  await waitFor("scar serve to list its functions", () => (/functions:/.test(out) ? true : undefined));
  return { child, api, exited };
}

/** Image files of this engine's disks attached to a loop device (`losetup -a`). */
function attachedImages(): string[] {
  return execFileSync("losetup", ["-a"], { encoding: "utf8" })
    .split("\n")
    .map((l) => /\((.*)\)/.exec(l)?.[1]?.replace(/ \(deleted\)$/, ""))
    .filter((f): f is string => f?.startsWith(disksDir) === true);
}

/** Mount points under the data folder, in any process's mount namespace (the helper's, containers'). */
function mountsAnywhere(): string[] {
  const found = new Set<string>();
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    let info = "";
    try {
      info = readFileSync(`/proc/${pid}/mountinfo`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    for (const line of info.split("\n")) {
      const mp = line.split(" ")[4];
      if (mp?.startsWith(dataDir)) found.add(mp);
    }
  }
  return [...found];
}

test("after kill -9 with runs on their disks and a disk in the pool, a restart and a clean stop leave no loop device, mount or file", async () => {
  await new ImageStore({ dataDir }).import(fixture.base, {
    format: "rootfs",
    tag: IMAGE,
    changes: ["ENV PATH=/bin"],
  });
  let engine = await serve();
  const { admin } = JSON.parse(readFileSync(join(dataDir, "credentials"), "utf8"));
  const auth = `Basic ${Buffer.from(`${admin.user}:${admin.password}`).toString("base64")}`;
  const call = (path: string, body: object) =>
    fetch(`${engine.api}${path}`, {
      method: "POST",
      headers: { authorization: auth },
      body: JSON.stringify(body),
    });
  const deploy = async (name: string, script: string, scar: object) => {
    const r = await call("/system/services", { name, image: IMAGE, memory: "64Mi", script, scar });
    assert.equal(r.status, 201, await r.text());
  };
  // A quick run on a 600 MiB disk, which then waits in the pool; two runs that sleep on 512 MiB disks.
  await deploy("quick", "echo quick\n", { ephemeral_storage: 600 });
  await deploy("sleeper", "sleep 4\n", { concurrency: 2 });
  const quick = await call("/run/quick", {});
  assert.equal(quick.status, 200, await quick.text());
  for (let i = 0; i < 2; i++) assert.equal((await call("/job/sleeper", {})).status, 201);
  const before = await waitFor(
    "two runs and a pooled disk",
    () => {
      const images = attachedImages();
      const runs = readdirSync(join(dataDir, "runtime", "runs"));
      return images.length >= 3 && runs.length >= 2 ? images : undefined;
    },
    60_000,
  );
  engine.child.kill("SIGKILL");
  await engine.exited;

  engine = await serve();
  const stale = (found: string[]) => found.filter((f) => before.some((b) => f.startsWith(b.slice(0, -4))));
  assert.deepEqual(stale(attachedImages()), [], "no loop device holds a disk of the killed engine");
  assert.deepEqual(stale(mountsAnywhere()), [], "no mount of a disk of the killed engine");
  for (const img of before) {
    assert.equal(existsSync(img), false, `${img} is deleted`);
    assert.equal(existsSync(img.slice(0, -4)), false, `${img.slice(0, -4)} is deleted`);
  }
  // The sleeper's jobs were recovered and run again; let them end before the clean stop.
  await waitFor(
    "the recovered runs to end",
    () => (readdirSync(join(dataDir, "runtime", "runs")).length === 0 ? true : undefined),
    60_000,
  );
  engine.child.kill("SIGTERM");
  await engine.exited;
  assert.deepEqual(attachedImages(), [], "a clean stop detaches every disk");
  assert.deepEqual(mountsAnywhere(), [], "a clean stop leaves no mount under the data folder");
  assert.deepEqual(readdirSync(disksDir), [], "and no disk file");
  assert.deepEqual(readdirSync(join(dataDir, "runtime", "runs")), [], "and no run folder");
});
