/**
 * Issue 12.8: a 128 MiB function wrote 1.5 GB of outputs and 500 MB into its root file system, all
 * on the data disk. Now what one invocation writes to its root file system and output folder is
 * limited together (the run's own ext4 disk, src/engine/runtime/disk.ts; Lambda's ephemeral_storage,
 * 512 MB by default): past the limit the job fails with reason `disk`, its partial outputs are not
 * uploaded, and the log says the limit and the key that raises it. Small limits keep the tests fast.
 */
import assert from "node:assert/strict";
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Runner } from "../../src/engine/runtime/index.js";
import { type Harness, openHarness, RUNTIMES } from "./runtime-harness.js";

let h: Harness;
before(async () => {
  h = await openHarness();
});
after(async () => {
  await h?.close();
});

/** the root file system's size in KiB, as the container sees it */
const df = { cmd: ["/bin/sh", "-c", "df -k / | tail -1 | awk '{print $2}'"] };
const io = (name: string) => `      output:\n      - path: media/${name}\n`;

for (const runtime of RUNTIMES) {
  test(`${runtime}: writing past the limit into the output folder fails with reason disk, nothing uploaded`, async () => {
    const name = `disk-out-${runtime}`;
    const f = h.fn(
      name,
      io(name),
      [
        'echo small > "$TMP_OUTPUT_DIR/first.txt"',
        'dd if=/dev/zero of="$TMP_OUTPUT_DIR/big.bin" bs=1M count=64',
        "echo dd=$?",
        "",
      ].join("\n"),
    );
    const r = await h.run(runtime, f, {}, {}, { diskMiB: 16 });
    assert.equal(r.reason, "disk", `${r.log.join("\n")}\n${r.output}`);
    assert.match(r.output.toString(), /No space left on device/);
    assert.deepEqual(await h.keys(`${name}/`), [], "partial outputs are not uploaded");
    const log = r.log.join("\n");
    assert.match(log, /disk limit of 16 MiB/);
    assert.match(log, /lambda\.ephemeral_storage/);
  });

  test(`${runtime}: writing past the limit into the root file system fails with reason disk`, async () => {
    const name = `disk-root-${runtime}`;
    const f = h.fn(
      name,
      io(name),
      'dd if=/dev/zero of=/var-big.bin bs=1M count=64\necho ok > "$TMP_OUTPUT_DIR/a.txt"\n',
    );
    const r = await h.run(runtime, f, {}, {}, { diskMiB: 16 });
    assert.equal(r.reason, "disk", `${r.log.join("\n")}\n${r.output}`);
    assert.deepEqual(await h.keys(`${name}/`), []);
  });

  test(`${runtime}: within the limit, outputs (sub-folders too) are uploaded and one disk serves run after run`, async () => {
    const name = `disk-ok-${runtime}`;
    const f = h.fn(
      name,
      io(name),
      [
        "dd if=/dev/zero of=/tmp/scratch bs=1M count=6 2>/dev/null",
        'mkdir "$TMP_OUTPUT_DIR/sub"',
        'dd if=/dev/zero of="$TMP_OUTPUT_DIR/sub/six.bin" bs=1M count=6 2>/dev/null',
        'echo done > "$TMP_OUTPUT_DIR/done.txt"',
        "",
      ].join("\n"),
    );
    for (let i = 0; i < 3; i++) {
      // 3 x 12 MiB through one 16 MiB disk: each run starts on an empty one (a finished run's disk is
      // emptied in the background; drain() waits for that, else the next run would get a new disk)
      await h.runners[runtime].drain();
      const r = await h.run(runtime, f, {}, {}, { diskMiB: 16 });
      assert.equal(r.reason, "ok", `${r.log.join("\n")}\n${r.output}`);
    }
    assert.deepEqual(await h.keys(`${name}/`), [`${name}/done.txt`, `${name}/sub/six.bin`]);
    assert.equal(await h.get(`${name}/done.txt`), "done\n");
    // every run of this file used a 16 MiB disk, one after the other (the first two before a drain:
    // at most two); the last three reused one
    const images = readdirSync(join(h.root, `rt-${runtime}`, "disks")).filter((n) => n.endsWith(".img"));
    assert.ok(images.length <= 2, images.join(" "));
  });
}

test("12 runs at once each get their own disk (more than the 8 loop devices a host starts with)", async () => {
  const rs = await Promise.all(
    Array.from({ length: 12 }, () =>
      h.runners.crun.run({ image: h.fixture.image, diskBytes: 16 << 20, ...df }),
    ),
  );
  for (const r of rs) {
    assert.equal(r.reason, "ok", r.message);
    // the root file system's free space is the disk's, not the host's
    assert.ok(Number(r.stdout.toString().trim()) < 32 << 10, r.stdout.toString());
  }
});

test("an onDisk folder takes its source's owner and mode: a non-root user writes there, the owner is kept", async () => {
  const out = join(h.root, "owned-out");
  mkdirSync(out);
  chownSync(out, 1000, 1000);
  chmodSync(out, 0o700);
  const r = await h.runners.runc.run({
    image: h.fixture.image,
    user: "app",
    diskBytes: 16 << 20,
    mounts: [{ source: out, destination: "/out", onDisk: true }],
    cmd: ["/bin/sh", "-c", "stat -c '%u %a' /out; echo mine > /out/f"],
  });
  assert.equal(r.reason, "ok", r.stderr.toString());
  assert.equal(r.stdout.toString(), "1000 700\n");
  assert.equal(readFileSync(join(out, "f"), "utf8"), "mine\n");
  assert.equal(statSync(join(out, "f")).uid, 1000);
});

test("a disk made ahead of need (prewarmDiskBytes) serves the first run", async () => {
  const runner = await Runner.open({ stateDir: join(h.root, "rt-prewarm"), prewarmDiskBytes: 16 << 20 });
  try {
    await runner.drain();
    const disks = join(h.root, "rt-prewarm", "disks");
    assert.equal(readdirSync(disks).filter((n) => n.endsWith(".img")).length, 1, "made at start");
    const r = await runner.run({ image: h.fixture.image, diskBytes: 16 << 20, cmd: ["/bin/true"] });
    assert.equal(r.reason, "ok");
    await runner.drain();
    assert.equal(readdirSync(disks).filter((n) => n.endsWith(".img")).length, 1, "and used by the run");
  } finally {
    await runner.close();
  }
  assert.deepEqual(readdirSync(join(h.root, "rt-prewarm", "disks")), [], "close() deletes the images");
});
