import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { ImageStore } from "../../../src/engine/images/index.js";
import { craftTar, tempDir } from "./helpers.js";

const work = tempDir("scar-store-");
after(() => fs.rmSync(work, { recursive: true, force: true }));
let n = 0;
const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** A store with two images sharing their first layer: base:1 (1 layer) and app:1 (2 layers). */
async function twoImages() {
  const images = new ImageStore({ dataDir: join(work, `s${n++}`) });
  const l1 = craftTar([{ name: "base", data: "base" }]);
  const l2 = craftTar([{ name: "app", data: "app" }]);
  const cfg = (ids: string[]) =>
    Buffer.from(
      JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: ids } }),
    );
  const c1 = cfg([sha(l1)]);
  const c2 = cfg([sha(l1), sha(l2)]);
  const id = (b: Buffer) => sha(b).slice(7);
  const file = join(work, `save${n}.tar`);
  fs.writeFileSync(
    file,
    craftTar([
      { name: `${id(l1)}/layer.tar`, data: l1 },
      { name: `${id(l2)}/layer.tar`, data: l2 },
      { name: `${id(c1)}.json`, data: c1 },
      { name: `${id(c2)}.json`, data: c2 },
      {
        name: "manifest.json",
        data: JSON.stringify([
          { Config: `${id(c1)}.json`, RepoTags: ["base:1"], Layers: [`${id(l1)}/layer.tar`] },
          {
            Config: `${id(c2)}.json`,
            RepoTags: ["app:1", "app:latest"],
            Layers: [`${id(l1)}/layer.tar`, `${id(l2)}/layer.tar`],
          },
        ]),
      },
    ]),
  );
  await images.import(file);
  return images;
}

const count = (images: ImageStore, sub: string) => fs.readdirSync(join(images.store.root, sub)).length;

test("reference counts; rm keeps what another image uses", async () => {
  const images = await twoImages();
  const base = images.resolve("base:1");
  const app = images.resolve("app:1");
  const { blobs, layers } = images.store.refcounts();
  assert.equal(layers.get(base.chainIds[0]!), 2);
  assert.equal(layers.get(app.chainIds[1]!), 1);
  assert.equal(blobs.get(images.find("app:1")!.layers[0]!.digest), 2);
  assert.equal(count(images, "layers"), 2);

  const r1 = await images.remove(["app:1"]);
  assert.deepEqual(r1, { untagged: ["docker.io/library/app:1"], deleted: [] }, "app:latest still names it");
  const r2 = await images.remove(["app:latest"]);
  assert.deepEqual(r2.deleted, [app.digest]);
  assert.equal(count(images, "layers"), 1, "the shared layer stays");
  assert.ok(fs.existsSync(join(base.layerDirs[0]!, "base")));
  assert.equal(fs.existsSync(app.layerDirs[1]!), false);
  await images.remove([base.id.slice(7, 19)]);
  assert.equal(count(images, "layers"), 0);
  assert.equal(count(images, "blobs/sha256"), 0);
  assert.deepEqual(images.list(), []);
});

test("rm by ID of an image with several names needs force", async () => {
  const images = await twoImages();
  const app = images.resolve("app:1");
  await assert.rejects(images.remove([app.id]), /several names/);
  const r = await images.remove([app.id], { force: true });
  assert.deepEqual(r.untagged.sort(), ["docker.io/library/app:1", "docker.io/library/app:latest"]);
  assert.deepEqual(r.deleted, [app.digest]);
});

test("prune keeps leased layers; prune --all removes the rest", async () => {
  const images = await twoImages();
  const app = images.resolve("app:1");
  const release = images.lease(app);
  const p1 = await images.prune({ all: true });
  // images with a leased layer are kept (base:1 shares its layer with app:1)
  assert.deepEqual(p1.images, []);
  assert.ok(images.find("app:1"), "the leased image is kept");
  assert.ok(fs.existsSync(app.layerDirs[1]!));
  release();
  const p2 = await images.prune({ all: true });
  assert.equal(p2.images.length, 2);
  assert.equal(count(images, "layers"), 0);
});

test("a lease is seen by other processes at once and a while after its release; this process goes by what it holds", async () => {
  const images = await twoImages();
  const other = new ImageStore({ dataDir: join(images.store.root, "..") }); // another process's view
  const app = images.resolve("app:1");
  const leases = join(images.store.root, "leases");
  const first = images.lease(app);
  const second = images.lease(app);
  assert.equal(fs.readdirSync(leases).length, 1, "one lease file per process, not per lease");
  assert.deepEqual((await other.prune({ all: true })).images, [], "the other process keeps what is leased");
  first();
  second();
  assert.deepEqual((await other.prune({ all: true })).images, [], "released moments ago: still listed");
  const own = await images.prune({ all: true });
  assert.equal(own.images.length, 2, "this process knows nothing of it is held any more");
  assert.equal(count(images, "layers"), 0);
});

test("resolve() answers from what it read before only while no process has changed the index", async () => {
  const images = await twoImages();
  const other = new ImageStore({ dataDir: join(images.store.root, "..") }); // another process's view
  const app = images.resolve("app:1");
  assert.equal(images.resolve("app:1"), app, "asked again, the same answer");
  await other.remove(["app:1", "app:latest"]);
  assert.throws(() => images.resolve("app:1"), /is not in the local store/);
  assert.equal(images.resolve("base:1").layerDirs.length, 1);
  await images.remove(["base:1"]);
  assert.throws(() => images.resolve("base:1"), /is not in the local store/);
});

test("prune removes what a crashed process left: temp files, stale leases and lock", async () => {
  const images = await twoImages();
  const root = images.store.root;
  const dead = 2 ** 22 + 12345; // above pid_max's default, so no live process has it
  fs.mkdirSync(join(root, "tmp", `${dead}-layer-abc`, "fs"), { recursive: true });
  fs.writeFileSync(join(root, "tmp", `${dead}-dl-abc`), "partial download");
  fs.writeFileSync(
    join(root, "leases", `${dead}-abc.json`),
    JSON.stringify(images.resolve("app:1").chainIds),
  );
  fs.writeFileSync(join(root, "images.lock"), String(dead));
  const mine = images.store.tempPath("keep");
  fs.writeFileSync(mine, "in progress");
  await images.remove(["app:1", "app:latest"]);
  assert.equal(count(images, "layers"), 1, "a dead process's lease does not keep layers");
  await images.prune();
  assert.deepEqual(fs.readdirSync(join(root, "tmp")), [mine.split("/").pop()]);
  // (this process's own lease file may still list what the import leased: it lingers a moment)
  assert.ok(!fs.readdirSync(join(root, "leases")).includes(`${dead}-abc.json`), "the stale lease is gone");
  assert.ok(images.find("base:1"), "named images are kept by a plain prune");
});

test("an image whose names are all moved to another image becomes dangling and is pruned", async () => {
  const images = await twoImages();
  const base = images.resolve("base:1");
  const app = images.find("app:1")!;
  await images.store.putImage(app, ["docker.io/library/base:1"]); // re-tag, as a pull of a newer base:1 would
  assert.deepEqual(images.find(base.digest)!.names, []);
  const p = await images.prune();
  assert.deepEqual(p.images, [base.digest]);
  assert.equal(images.find(base.digest), undefined);
  assert.ok(fs.existsSync(images.resolve("app:1").layerDirs[0]!), "the shared layer stays");
});

test("digest references do not keep an image whose last tag is removed", async () => {
  const images = await twoImages();
  const app = images.find("app:1")!;
  const byDigest = `docker.io/library/app@${app.digest}`;
  await images.store.putImage(app, [byDigest]); // as a pull by digest records it
  assert.deepEqual((await images.remove(["app:1"])).deleted, []);
  const r = await images.remove(["app:latest"]);
  assert.deepEqual(r.untagged, ["docker.io/library/app:latest", byDigest]);
  assert.deepEqual(r.deleted, [app.digest]);
  // and a pull by digest alone keeps the image until that reference is removed
  const base = images.find("base:1")!;
  await images.store.putImage(base, [`docker.io/library/base@${base.digest}`]);
  await images.remove(["base:1"]);
  assert.equal(images.find(base.digest), undefined, "its last tag went");

  const other = await twoImages();
  const b2 = other.find("base:1")!;
  await other.store.putImage(b2, [`docker.io/library/base@${b2.digest}`]);
  await other.store.withLock((idx) => {
    delete idx.names["docker.io/library/base:1"]; // as if only ever pulled by digest
  });
  assert.deepEqual((await other.prune()).images, [], "not dangling: it has a digest reference");
  assert.deepEqual((await other.remove([`base@${b2.digest}`])).deleted, [b2.digest]);
});

for (const umask of [0o022, 0o077])
  test(`the store is private whatever the umask (${umask.toString(8)}): data folder and layers 0700 (tightened if open), blobs 0600, layer roots 0755`, async () => {
    const dataDir = join(work, `open-${umask.toString(8)}`);
    fs.mkdirSync(join(dataDir, "images", "layers"), { recursive: true });
    fs.chmodSync(dataDir, 0o755);
    fs.chmodSync(join(dataDir, "images", "layers"), 0o755);
    const before = process.umask(umask);
    try {
      const images = new ImageStore({ dataDir });
      const mode = (p: string) => fs.statSync(p).mode & 0o7777;
      assert.equal(mode(dataDir), 0o700);
      for (const d of ["images", "images/layers", "images/tmp"])
        assert.equal(mode(join(dataDir, d)), 0o700, d);
      const layer = craftTar([{ name: "bin/su", data: "#!x", mode: 0o4755 }]);
      const rootfs = join(work, `suid-${umask.toString(8)}.tar`);
      fs.writeFileSync(rootfs, layer);
      await images.import(rootfs, { format: "rootfs", tag: "suid:1" });
      const [dir] = images.resolve("suid:1").layerDirs;
      assert.equal(mode(join(dir!, "bin/su")), 0o4755, "the setuid bit is kept for containers");
      assert.equal(mode(dir!), 0o755, "the image's / can be entered by its user");
      assert.equal(mode(join(dir!, "..")), 0o700, "the layer's own folder cannot be by anyone else");
      const blobs = join(dataDir, "images", "blobs", "sha256");
      for (const b of fs.readdirSync(blobs)) assert.equal(mode(join(blobs, b)), 0o600, b);
    } finally {
      process.umask(before);
    }
  });

test("pins: prune keeps each group's most recently used pin and its blob, drops older ones; --all drops all", async () => {
  const images = new ImageStore({ dataDir: tempDir("scar-pins-") });
  const store = images.store;
  const older = store.putBlob(Buffer.from("runtime layer of an older scar"));
  const newer = store.putBlob(Buffer.from("runtime layer of this scar"));
  const loose = store.putBlob(Buffer.from("nobody keeps this one"));
  store.writePin("cache", "old", { digest: older, what: "an older layer" });
  const past = new Date(Date.now() - 3600_000);
  fs.utimesSync(join(store.root, "pins/cache/old.json"), past, past);
  store.writePin("cache", "new", { digest: newer, what: "the layer" });
  const p1 = await images.prune();
  assert.deepEqual(p1.kept.pins, [{ group: "cache", what: "the layer", digest: newer, bytes: 26 }]);
  assert.equal(p1.blobs, 2, "the older pin's blob and the loose one go");
  assert.ok(store.hasBlob(newer) && !store.hasBlob(older) && !store.hasBlob(loose));
  assert.equal(store.readPin("cache", "old"), undefined, "the older pin is gone");
  assert.deepEqual(store.readPin("cache", "new"), { digest: newer, what: "the layer" });
  assert.equal((await images.prune()).kept.pins.length, 1, "kept at every prune");
  const all = await images.prune({ all: true });
  assert.deepEqual(all.kept.pins, []);
  assert.ok(!store.hasBlob(newer));
  assert.equal(store.readPin("cache", "new"), undefined);
});
