import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { DigestMismatchError } from "../../../src/engine/images/digest.js";
import { ImageStore, type PullEvent } from "../../../src/engine/images/index.js";
import { craftTar, tempDir } from "./helpers.js";
import {
  busyboxLayer,
  type FaultProxy,
  type Registry,
  rawPutBlob,
  rawPutManifest,
  startProxy,
  startRegistry,
  type TestImage,
  uploadImage,
} from "./registry-harness.js";

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
let reg: Registry;
let proxy: FaultProxy;
let bb: TestImage;
const work = tempDir("scar-pull-");

before(async () => {
  reg = await startRegistry();
  proxy = await startProxy(reg.host);
  bb = await uploadImage(reg.host, "lab/bb", "1", [await busyboxLayer()], {
    config: { Entrypoint: ["/bin/sh"], Cmd: ["-c", "echo hi"], User: "1000:1000", WorkingDir: "/tmp" },
  });
});
after(async () => {
  await proxy?.close();
  await reg?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

let n = 0;
function newStore(): ImageStore {
  return new ImageStore({ dataDir: join(work, `store${n++}`), concurrency: 3 });
}

function collect(): { events: PullEvent[]; onProgress: (e: PullEvent) => void } {
  const events: PullEvent[] = [];
  return { events, onProgress: (e) => events.push(e) };
}

test("pull an image anonymously; resolve gives its config and layer directories", async () => {
  const images = newStore();
  const { events, onProgress } = collect();
  const rec = await images.pull(`${reg.host}/lab/bb:1`, { onProgress });
  assert.equal(rec.digest, bb.manifestDigest);
  assert.equal(rec.configDigest, bb.configDigest);
  assert.deepEqual(rec.names, [`${reg.host}/lab/bb:1`]);
  const img = images.resolve(`${reg.host}/lab/bb:1`);
  assert.deepEqual(img.config.Entrypoint, ["/bin/sh"]);
  assert.deepEqual(img.config.Cmd, ["-c", "echo hi"]);
  assert.deepEqual(img.config.Env, ["PATH=/bin"]);
  assert.equal(img.config.User, "1000:1000");
  assert.equal(img.config.WorkingDir, "/tmp");
  assert.equal(img.layerDirs.length, 1);
  assert.ok(fs.statSync(join(img.layerDirs[0]!, "bin/busybox")).isFile());
  assert.equal(fs.readlinkSync(join(img.layerDirs[0]!, "bin/sh")), "busybox");
  assert.deepEqual(
    events.filter((e) => e.type === "layer").map((e) => (e as { status: string }).status),
    ["downloading", "downloaded", "unpacked"],
  );
  const done = events.at(-1)!;
  assert.equal(done.type, "done");
  assert.ok(done.type === "done" && done.downloaded > 1_000_000);
  // by digest, by short image ID, by familiar name
  assert.equal(images.resolve(`${reg.host}/lab/bb@${bb.manifestDigest}`).digest, bb.manifestDigest);
  assert.equal(images.resolve(bb.configDigest.slice(7, 19)).digest, bb.manifestDigest);
});

test("a second pull downloads nothing; a digest pull of a present image makes no request", async () => {
  const images = newStore();
  const ref = `${proxy.host}/lab/bb:1`;
  await images.pull(ref);
  proxy.log.length = 0;
  const { events, onProgress } = collect();
  await images.pull(ref, { onProgress });
  assert.deepEqual(
    proxy.log.filter((l) => l.includes("/blobs/")),
    [],
    "no blob requests",
  );
  const done = events.at(-1)!;
  assert.ok(done.type === "done" && done.upToDate && done.downloaded === 0);
  proxy.log.length = 0;
  await images.pull(`${proxy.host}/lab/bb@${bb.manifestDigest}`);
  assert.deepEqual(proxy.log, []);
  // ensure() of a present image does not touch the network either
  await images.ensure(ref);
  assert.deepEqual(proxy.log, []);
});

test("concurrent pulls of one image download each blob once", async () => {
  const images = newStore();
  const ref = `${proxy.host}/lab/bb:1`;
  proxy.log.length = 0;
  const a = collect();
  const b = collect();
  const [r1, r2, r3] = await Promise.all([
    images.pull(ref, { onProgress: a.onProgress }),
    images.pull(ref, { onProgress: b.onProgress }),
    images.pull(ref),
  ]);
  assert.equal(r1.digest, r2.digest);
  assert.equal(r2.digest, r3.digest);
  const blobGets = proxy.log.filter((l) => l.startsWith("GET") && l.includes("/blobs/"));
  assert.equal(blobGets.length, 2, `config + layer once each: ${blobGets.join(", ")}`);
  assert.ok(
    b.events.some((e) => e.type === "done"),
    "the second caller gets progress events too",
  );
});

test("an interrupted layer download is resumed with a Range request", async () => {
  const images = newStore();
  proxy.log.length = 0;
  const layerDigest = sha(bb.layers[0]!);
  proxy.cut(layerDigest, 300_000);
  const { events, onProgress } = collect();
  const rec = await images.pull(`${proxy.host}/lab/bb:1`, { onProgress });
  assert.equal(rec.digest, bb.manifestDigest);
  assert.ok(events.some((e) => e.type === "retry"));
  const layerGets = proxy.log.filter((l) => l.startsWith("GET") && l.includes(rec.layers[0]!.digest));
  assert.equal(layerGets.length, 2);
  const resumedAt = Number(/bytes=(\d+)-$/.exec(layerGets[1]!)?.[1]);
  assert.ok(resumedAt > 0 && resumedAt <= 300_000, layerGets[1]);
  assert.ok(fs.existsSync(join(images.resolve(rec.digest).layerDirs[0]!, "bin/busybox")));
});

test("a corrupted blob is rejected by digest and nothing is kept", async () => {
  const images = newStore();
  const layerDigest = sha(bb.layers[0]!);
  proxy.corrupt(layerDigest);
  await assert.rejects(images.pull(`${proxy.host}/lab/bb:1`), DigestMismatchError);
  assert.equal(images.list().length, 0);
  const blobs = fs.readdirSync(join(images.store.root, "blobs/sha256"));
  assert.ok(!blobs.includes(layerDigest.slice(7)), "no corrupted layer blob kept");
  assert.deepEqual(fs.readdirSync(join(images.store.root, "layers")), []);
  assert.deepEqual(fs.readdirSync(join(images.store.root, "tmp")), []);
  // the config is fine and corrupted too: rejected as well
  proxy.corrupt(bb.configDigest);
  await assert.rejects(newStore().pull(`${proxy.host}/lab/bb:1`), DigestMismatchError);
});

test("a manifest that does not match the digest asked for is rejected", async () => {
  const images = newStore();
  const wrong = `sha256:${"0".repeat(64)}`;
  await assert.rejects(images.pull(`${reg.host}/lab/bb@${wrong}`), /not found|MANIFEST_UNKNOWN|mismatch/);
});

test("multi-layer images with whiteouts, and indexes choosing the host platform", async () => {
  const l1 = craftTar([
    { name: "etc/a", data: "a" },
    { name: "etc/b", data: "b" },
    { name: "bin", type: "symlink", linkname: "usr/bin" },
    { name: "usr/bin/tool", data: "v1" },
  ]);
  const l2 = craftTar([
    { name: "etc/.wh.a", data: "" },
    { name: "bin/tool", data: "v2" },
  ]);
  const amd = await uploadImage(reg.host, "lab/multi", "amd64", [l1, l2], { arch: "amd64" });
  const arm = await uploadImage(reg.host, "lab/multi", "arm64", [l1], { arch: "arm64" });
  const size = async (d: string) =>
    Number(
      (await fetch(`http://${reg.host}/v2/lab/multi/manifests/${d}`, { method: "HEAD" })).headers.get(
        "content-length",
      ),
    );
  const index = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [
      {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: arm.manifestDigest,
        size: await size(arm.manifestDigest),
        platform: { os: "linux", architecture: "arm64", variant: "v8" },
      },
      {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: amd.manifestDigest,
        size: await size(amd.manifestDigest),
        platform: { os: "linux", architecture: "amd64" },
      },
    ],
  };
  const indexDigest = await rawPutManifest(reg.host, "lab/multi", "latest", index, index.mediaType);
  const images = newStore();
  const host = process.arch === "arm64" ? arm : amd;
  const rec = await images.pull(`${reg.host}/lab/multi`);
  assert.equal(rec.digest, host.manifestDigest);
  assert.equal(rec.indexDigest, indexDigest);
  assert.equal(images.resolve(`${reg.host}/lab/multi@${indexDigest}`).digest, host.manifestDigest);
  const armRec = await images.pull(`${reg.host}/lab/multi:latest`, {
    platform: { os: "linux", architecture: "arm64", variant: "v8" },
  });
  assert.equal(armRec.digest, arm.manifestDigest);
  await assert.rejects(
    images.pull(`${reg.host}/lab/multi`, { platform: { os: "linux", architecture: "s390x" } }),
    /no image for linux\/s390x \(it has: linux\/arm64\/v8, linux\/amd64\)/,
  );
  if (process.arch === "x64") {
    const flat = join(work, "flat-multi");
    images.materialize(amd.manifestDigest, flat);
    assert.deepEqual(fs.readdirSync(join(flat, "etc")), ["b"]);
    assert.equal(fs.readFileSync(join(flat, "usr/bin/tool"), "utf8"), "v2");
    assert.equal(fs.readlinkSync(join(flat, "bin")), "usr/bin");
    const img = images.resolve(amd.manifestDigest);
    assert.equal(img.layerDirs.length, 2);
    // the second layer shares the first one's unpacked directory with the arm64 image (same ChainID)
    assert.equal(images.resolve(arm.manifestDigest).layerDirs[0], img.layerDirs[0]);
  }
});

test("uncompressed layers, and a DiffID that does not match the config is rejected", async () => {
  const tar = craftTar([{ name: "plain", data: "uncompressed layer" }]);
  await uploadImage(reg.host, "lab/plain", "1", [tar], { gzip: false });
  const images = newStore();
  const rec = await images.pull(`${reg.host}/lab/plain:1`);
  assert.equal(
    fs.readFileSync(join(images.resolve(rec.digest).layerDirs[0]!, "plain"), "utf8"),
    "uncompressed layer",
  );

  // a config whose diff_ids lie about the layer
  const layer = craftTar([{ name: "x", data: "x" }]);
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [`sha256:${"1".repeat(64)}`] },
    }),
  );
  const cd = await rawPutBlob(reg.host, "lab/liar", config);
  const ld = await rawPutBlob(reg.host, "lab/liar", layer);
  await rawPutManifest(
    reg.host,
    "lab/liar",
    "1",
    {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: cd, size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: ld, size: layer.length }],
    },
    "application/vnd.oci.image.manifest.v1+json",
  );
  await assert.rejects(images.pull(`${reg.host}/lab/liar:1`), DigestMismatchError);
  assert.equal(images.find(`${reg.host}/lab/liar:1`), undefined);
});

test("a missing image gives a clear error", async () => {
  const images = newStore();
  await assert.rejects(images.pull(`${reg.host}/lab/nope:1`), /not found/);
  assert.throws(() => images.resolve("busybox"), /not in the local store/);
});
