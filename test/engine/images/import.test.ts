import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { gzipSync } from "node:zlib";
import { applyChanges } from "../../../src/engine/images/import.js";
import { ImageStore } from "../../../src/engine/images/index.js";
import { busyboxRootfs, craftTar, tempDir } from "./helpers.js";
import { busyboxLayer, type Registry, startRegistry, uploadImage } from "./registry-harness.js";

const work = tempDir("scar-import-");
let reg: Registry;
let n = 0;
const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const newStore = () => new ImageStore({ dataDir: join(work, `store${n++}`) });

before(async () => {
  reg = await startRegistry();
  await uploadImage(
    reg.host,
    "lab/two",
    "1",
    [
      await busyboxLayer(),
      craftTar([
        { name: "etc/.wh.hostname", data: "" },
        { name: "etc/added", data: "layer 2" },
      ]),
    ],
    { config: { Cmd: ["/bin/echo", "from-config"] } },
  );
});
after(async () => {
  await reg?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

/** `skopeo copy` of the registry's lab/two:1 to `dest` (`oci:DIR:TAG`, `docker-archive:FILE:NAME`). */
function copyTwo(dest: string) {
  execFileSync("skopeo", [
    "copy",
    "--quiet",
    "--src-tls-verify=false",
    `docker://${reg.host}/lab/two:1`,
    dest,
  ]);
}

function checkTwo(images: ImageStore, ref: string) {
  const img = images.resolve(ref);
  assert.equal(img.layerDirs.length, 2);
  assert.deepEqual(img.config.Cmd, ["/bin/echo", "from-config"]);
  const flat = join(work, `flat${n++}`);
  images.materialize(ref, flat);
  assert.ok(fs.statSync(join(flat, "bin/busybox")).isFile());
  assert.equal(fs.existsSync(join(flat, "etc/hostname")), false, "whiteout applied");
  assert.equal(fs.readFileSync(join(flat, "etc/added"), "utf8"), "layer 2");
}

test("import a plain root file system directory as a one-layer image, with config changes", async () => {
  const rootfs = busyboxRootfs(join(work, "rootfs"));
  const images = newStore();
  const r = await images.import(rootfs, {
    tag: "myfn:1",
    changes: ['CMD ["/bin/sh","-c","echo hi"]', "ENV GREETING=hello NAME=world", "WORKDIR /tmp", "USER 1000"],
  });
  assert.equal(r.format, "rootfs");
  const img = images.resolve("myfn:1");
  assert.deepEqual(img.names, ["docker.io/library/myfn:1"]);
  assert.deepEqual(img.config.Cmd, ["/bin/sh", "-c", "echo hi"]);
  assert.deepEqual(img.config.Env, [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "GREETING=hello",
    "NAME=world",
  ]);
  assert.equal(img.config.WorkingDir, "/tmp");
  assert.equal(img.config.User, "1000");
  assert.equal(img.layerDirs.length, 1);
  const dir = img.layerDirs[0]!;
  assert.equal(fs.readFileSync(join(dir, "bin/busybox")).length, fs.statSync("/bin/busybox").size);
  assert.equal(fs.readlinkSync(join(dir, "bin/sh")), "busybox");
  assert.equal(fs.readFileSync(join(dir, "etc/hostname"), "utf8"), "scar\n");
});

test("import a root file system tar (gzip) and name it after the file", async () => {
  const tar = await busyboxLayer();
  const file = join(work, "My_RootFS.tar.gz");
  fs.writeFileSync(file, gzipSync(tar));
  const images = newStore();
  const r = await images.import(file);
  assert.equal(r.format, "rootfs");
  const rec = r.images[0]!;
  assert.deepEqual(rec.names, ["localhost/my_rootfs:latest"]);
  assert.equal(rec.layers[0]!.diffId, sha(tar));
  assert.equal(rec.layers[0]!.mediaType, "application/vnd.oci.image.layer.v1.tar+gzip");
  assert.ok(fs.existsSync(join(images.resolve("localhost/my_rootfs").layerDirs[0]!, "bin/busybox")));
});

test("import a docker-archive written by skopeo (docker save format)", async () => {
  const file = join(work, "two.tar");
  copyTwo(`docker-archive:${file}:grycap/two:v1`);
  const images = newStore();
  const r = await images.import(file);
  assert.equal(r.format, "docker-archive");
  assert.deepEqual(r.images[0]!.names, ["docker.io/grycap/two:v1"]);
  checkTwo(images, "grycap/two:v1");
  // `docker save | gzip` works too
  const gz = join(work, "two.tar.gz");
  fs.writeFileSync(gz, gzipSync(fs.readFileSync(file)));
  const images2 = newStore();
  const r2 = await images2.import(gz);
  assert.equal(r2.format, "docker-archive");
  assert.equal(r2.images[0]!.digest, r.images[0]!.digest);
});

test("import a hand-made classic docker save archive with several images", async () => {
  const l1 = craftTar([{ name: "a", data: "A" }]);
  const l2 = craftTar([{ name: "b", data: "B" }]);
  const cfg = (ids: string[], cmd: string) =>
    Buffer.from(
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        config: { Cmd: [cmd] },
        rootfs: { type: "layers", diff_ids: ids },
      }),
    );
  const c1 = cfg([sha(l1)], "one");
  const c2 = cfg([sha(l1), sha(l2)], "two");
  const id = (b: Buffer) => sha(b).slice(7);
  const archive = craftTar([
    { name: `${id(l1)}/`, type: "dir" },
    { name: `${id(l1)}/layer.tar`, data: l1 },
    { name: `${id(l2)}/`, type: "dir" },
    { name: `${id(l2)}/layer.tar`, data: l2 },
    { name: `${id(c1)}.json`, data: c1 },
    { name: `${id(c2)}.json`, data: c2 },
    {
      name: "manifest.json",
      data: JSON.stringify([
        { Config: `${id(c1)}.json`, RepoTags: ["one:latest"], Layers: [`${id(l1)}/layer.tar`] },
        {
          Config: `${id(c2)}.json`,
          RepoTags: ["localhost:5000/two:2"],
          Layers: [`${id(l1)}/layer.tar`, `${id(l2)}/layer.tar`],
        },
      ]),
    },
  ]);
  const file = join(work, "save.tar");
  fs.writeFileSync(file, archive);
  const images = newStore();
  const r = await images.import(file);
  assert.equal(r.images.length, 2);
  assert.deepEqual(images.resolve("one").config.Cmd, ["one"]);
  const two = images.resolve("localhost:5000/two:2");
  assert.equal(two.layerDirs[0], images.resolve("one").layerDirs[0], "the shared layer is unpacked once");
  assert.equal(fs.readFileSync(join(two.layerDirs[1]!, "b"), "utf8"), "B");
  assert.equal(two.id, sha(c2));
});

test("import an OCI layout, as a directory and as a tar", async () => {
  const dir = join(work, "oci");
  copyTwo(`oci:${dir}:v1`);
  const images = newStore();
  const r = await images.import(dir, { tag: "lab/two-oci:1" });
  assert.equal(r.format, "oci");
  assert.ok(r.images[0]!.names.includes("docker.io/lab/two-oci:1"));
  assert.ok(r.images[0]!.names.includes("localhost/oci:v1"), r.images[0]!.names.join());
  checkTwo(images, "lab/two-oci:1");

  const tarFile = join(work, "oci.tar");
  execFileSync("tar", ["-C", dir, "-cf", tarFile, "."]);
  const images2 = newStore();
  const r2 = await images2.import(tarFile, { tag: "x/y:z" });
  assert.equal(r2.format, "oci");
  assert.equal(r2.images[0]!.digest, r.images[0]!.digest, "same manifest, same digest");
  checkTwo(images2, "x/y:z");
});

test("an OCI layout whose blob does not match its name is refused", async () => {
  const dir = join(work, "oci-bad");
  copyTwo(`oci:${dir}:v1`);
  const idx = JSON.parse(fs.readFileSync(join(dir, "index.json"), "utf8"));
  const m = JSON.parse(
    fs.readFileSync(join(dir, "blobs", idx.manifests[0].digest.replace(":", "/")), "utf8"),
  );
  const layerPath = join(dir, "blobs", m.layers[1].digest.replace(":", "/"));
  const bytes = fs.readFileSync(layerPath);
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
  fs.writeFileSync(layerPath, bytes);
  await assert.rejects(newStore().import(dir), /digest mismatch/);
});

test("config changes follow Dockerfile syntax", () => {
  const c = applyChanges({ Env: ["A=1"] }, [
    "ENTRYPOINT /app/run --flag",
    "ENV A 2",
    'LABEL a=b c="d e"',
    "EXPOSE 8080 53/udp",
  ]);
  assert.deepEqual(c.Entrypoint, ["/bin/sh", "-c", "/app/run --flag"]);
  assert.deepEqual(c.Env, ["A=2"]);
  assert.deepEqual(c.Labels, { a: "b", c: "d e" });
  assert.deepEqual(c.ExposedPorts, { "8080/tcp": {}, "53/udp": {} });
  assert.throws(() => applyChanges({}, ["RUN rm -rf /"]), /unsupported change instruction "RUN"/);
});
