/**
 * The function image build: its sources (a registry, the local store, a `docker save` archive), its
 * layout (config, manifest type, the runtime layer's size), reproducibility, and the inputs refused
 * with a one-line error before any image is recorded. A real `docker-registry` on loopback.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ImageStore } from "../../src/engine/images/index.js";
import { type Manifest, MEDIA } from "../../src/engine/images/types.js";
import { parseFdl } from "../../src/fdl/load.js";
import { buildFunctionImage, FunctionImageError, RUNTIME_PIN_GROUP } from "../../src/lambda/image/builder.js";
import type { ImageSource } from "../../src/lambda/image/types.js";
import {
  busyboxLayer,
  type Registry,
  rawPutManifest,
  startRegistry,
  uploadImage,
} from "../engine/images/registry-harness.js";

let work: string;
let reg: Registry;
let images: ImageStore;
let bb: string;

before(async () => {
  work = mkdtempSync(join(tmpdir(), "scar-fnbuild-"));
  reg = await startRegistry();
  images = new ImageStore({ dataDir: join(work, "data") });
  await uploadImage(reg.host, "lab/bb", "1", [await busyboxLayer()], {
    config: { Env: ["PATH=/usr/bin:/bin", "FROM_BASE=yes"], Entrypoint: ["/bin/old"], Cmd: ["x"] },
  });
  bb = `${reg.host}/lab/bb:1`;
});
after(async () => {
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

function fdl(name: string, script: string, extra: Record<string, unknown> = {}) {
  const dir = join(work, `fdl-${name}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "script.sh"), script);
  const text = JSON.stringify({
    functions: {
      aws: [
        {
          lambda: {
            name,
            runtime: "image",
            init_script: "script.sh",
            container: { image: bb, environment: { Variables: { B: "2", A: "1" } } },
            input: [{ storage_provider: "s3", path: "in-bucket" }],
            ...extra,
          },
          iam: { role: "arn:aws:iam::000000000000:role/scar" },
        },
      ],
    },
  });
  const file = join(dir, "fn.yaml");
  writeFileSync(file, text);
  const r = parseFdl(file, text);
  return { spec: r.functions[0]!, storageProviders: r.storage_providers, dir };
}

function build(
  f: ReturnType<typeof fdl>,
  tag: string,
  source: ImageSource = { kind: "registry", reference: bb },
  opts = {},
) {
  return buildFunctionImage(
    { spec: f.spec, storageProviders: f.storageProviders, source, images, tag },
    opts,
  );
}

function manifestOf(digest: string): Manifest {
  return JSON.parse(images.store.readBlob(digest).toString("utf8")) as Manifest;
}

test("from a registry: Docker v2 schema 2, the runtime and /var/task layers, Lambda's config; runtime layer size", async () => {
  const f = fdl("cfg", "echo hi\n", { extra_payload: "payload" });
  mkdirSync(join(f.dir, "payload/sub"), { recursive: true });
  writeFileSync(join(f.dir, "payload/model.bin"), "weights");
  writeFileSync(join(f.dir, "payload/sub/x.txt"), "x");
  const t0 = Date.now();
  const built = await build(f, "scar-lambda/cfg:latest");
  const seconds = (Date.now() - t0) / 1000;
  const m = manifestOf(built.digest);
  assert.equal(m.mediaType, MEDIA.dockerManifest);
  assert.equal(m.config.mediaType, MEDIA.dockerConfig);
  assert.equal(m.layers.length, 3);
  assert.ok(m.layers.every((l) => l.mediaType === MEDIA.dockerLayerGzip));
  const runtimeLayer = m.layers[1]!;
  console.log(
    `# runtime layer ${(runtimeLayer.size / 1e6).toFixed(1)} MB compressed; function layer ${m.layers[2]!.size} B; first build ${seconds.toFixed(1)} s; image ${(built.uncompressedBytes / 1e6).toFixed(1)} MB uncompressed`,
  );
  assert.ok(
    runtimeLayer.size <= 45 * 1024 * 1024,
    `the runtime layer is ${runtimeLayer.size} bytes, over 45 MB`,
  );
  const img = images.resolve(built.reference);
  assert.equal(img.platform.architecture, "amd64");
  assert.equal(img.config.WorkingDir, "/var/task");
  assert.equal(img.config.Cmd, undefined);
  assert.match(
    img.config.Entrypoint!.join(" "),
    /^\/opt\/scar\/lib\/ld-linux-x86-64\.so\.2 --library-path \/opt\/scar\/lib \/opt\/scar\/bin\/node \/opt\/scar\/runtime\/bootstrap\.mjs$/,
  );
  assert.ok(img.config.Env!.includes("PATH=/var/task:/usr/bin:/bin"));
  assert.ok(img.config.Env!.includes("FROM_BASE=yes"));
  assert.ok(img.config.Env!.includes("A=1") && img.config.Env!.includes("B=2"));
  const task = join(img.layerDirs[2]!, "var/task");
  const cfg = execFileSync("cat", [join(task, "function_config.yaml")], { encoding: "utf8" });
  assert.match(cfg, /^init_script: script\.sh$/m);
  assert.match(cfg, /^name: cfg$/m);
  assert.match(cfg, /^ {2}delete_image: true$/m);
  assert.ok(
    existsSync(join(task, "script.sh")) &&
      existsSync(join(task, "model.bin")) &&
      existsSync(join(task, "sub/x.txt")),
  );
  // the runtime layer's node starts through its own loader with nothing from a base image
  const rt = img.layerDirs[1]!;
  const v = execFileSync(
    join(rt, "opt/scar/lib/ld-linux-x86-64.so.2"),
    [
      "--library-path",
      join(rt, "opt/scar/lib"),
      join(rt, "opt/scar/bin/node"),
      "-e",
      "process.stdout.write(process.version)",
    ],
    { encoding: "utf8", env: {} },
  );
  assert.equal(v, process.version);
});

test("reproducible: the same inputs give the same digest; a script edit changes only the small layer", async () => {
  const f = fdl("rep", "echo one\n");
  const a = await build(f, "scar-lambda/rep:a");
  // compress the runtime layer again instead of using the one kept from the first build
  rmSync(join(images.store.root, "pins", RUNTIME_PIN_GROUP), { recursive: true, force: true });
  const b = await build(fdl("rep", "echo one\n"), "scar-lambda/rep:b");
  assert.equal(b.digest, a.digest);
  const c = await build(fdl("rep", "echo two\n"), "scar-lambda/rep:c");
  assert.notEqual(c.digest, a.digest);
  const [ma, mc] = [manifestOf(a.digest), manifestOf(c.digest)];
  assert.deepEqual(mc.layers.slice(0, 2), ma.layers.slice(0, 2));
  assert.notEqual(mc.layers[2]!.digest, ma.layers[2]!.digest);
});

test("from the local store and from a docker-save archive (container.image_file)", async () => {
  const archive = join(work, "bb.tar");
  execFileSync(
    "skopeo",
    ["copy", "--src-tls-verify=false", `docker://${bb}`, `docker-archive:${archive}:localhost/bb-file:1`],
    { stdio: "ignore" },
  );
  const f = fdl("file", "echo file\n");
  const fromFile = await build(f, "scar-lambda/file:latest", { kind: "file", path: archive });
  const fromStore = await build(f, "scar-lambda/file:store", {
    kind: "registry",
    reference: "localhost/bb-file:1",
  });
  // the same base layers and function: the same image
  assert.equal(fromStore.digest, fromFile.digest);
  assert.equal(images.find("scar-lambda/file:latest")?.digest, fromFile.digest);
});

test("bad input is refused in one line with the fix, and no image is recorded", async () => {
  const f = fdl("bad", "echo bad\n");
  const refused = async (source: ImageSource, re: RegExp, opts = {}) => {
    const tag = `scar-lambda/bad:${Math.random().toString(36).slice(2, 8)}`;
    await assert.rejects(build(f, tag, source, opts), (err: Error) => {
      assert.ok(err instanceof FunctionImageError, String(err));
      assert.match(err.message, re);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
    assert.equal(images.find(tag), undefined);
  };
  await refused(
    { kind: "registry", reference: `${reg.host}/lab/nope:1` },
    /^container\.image '.*\/lab\/nope:1' does not exist .*check its name and tag/,
  );
  await refused(
    { kind: "file", path: join(work, "missing.tar") },
    /^container\.image_file '.*missing\.tar' does not exist: give the path/,
  );

  // a manifest list with arm64 only
  const arm = await uploadImage(reg.host, "lab/armonly", "arm", [await busyboxLayer()], { arch: "arm64" });
  const size = Number(
    (
      await fetch(`http://${reg.host}/v2/lab/armonly/manifests/${arm.manifestDigest}`, { method: "HEAD" })
    ).headers.get("content-length"),
  );
  await rawPutManifest(
    reg.host,
    "lab/armonly",
    "latest",
    {
      schemaVersion: 2,
      mediaType: MEDIA.ociIndex,
      manifests: [
        {
          mediaType: MEDIA.ociManifest,
          digest: arm.manifestDigest,
          size,
          platform: { os: "linux", architecture: "arm64" },
        },
      ],
    },
    MEDIA.ociIndex,
  );
  await refused(
    { kind: "registry", reference: `${reg.host}/lab/armonly:latest` },
    /is a manifest list without linux\/amd64.*use an image built for amd64$/,
  );

  // over the size limit (Lambda's is 10 GB; the check is the same with a smaller one)
  await refused(
    { kind: "registry", reference: bb },
    /uncompressed, over Lambda's 0\.00 GB limit for container images: use a smaller base image$/,
    { maxUncompressedBytes: 1000 },
  );

  // an init script that is not there: refused before the base image is even pulled
  const g = fdl("bad2", "x");
  rmSync(g.spec.script!);
  await assert.rejects(
    buildFunctionImage({
      spec: g.spec,
      storageProviders: g.storageProviders,
      source: { kind: "registry", reference: `${reg.host}/lab/never:1` },
      images,
      tag: "scar-lambda/bad2:1",
    }),
    /^FunctionImageError: init_script '.*script\.sh' does not exist: fix the path in the FDL file$/,
  );
  assert.equal(images.find(`${reg.host}/lab/never:1`), undefined);
});

test("prune keeps the runtime layer for the next build, says so, and prune --all removes it", async () => {
  const built = await build(fdl("pin", "echo pin\n"), "scar-lambda/pin:1");
  const runtime = manifestOf(built.digest).layers[1]!.digest;
  // no image uses it any more: every function image goes
  for (const r of images.list())
    if (r.layers.some((l) => l.digest === runtime)) await images.remove([r.digest], { force: true });
  assert.ok(images.list().every((r) => r.layers.every((l) => l.digest !== runtime)));
  const prune = (...args: string[]) => {
    // the CLI in its own process, on this test's data folder
    const env: NodeJS.ProcessEnv = { ...process.env, SCAR_DATA_DIR: join(work, "data") };
    delete env.NODE_EXTRA_CA_CERTS;
    const bin = new URL("../../../bin/scar", import.meta.url).pathname;
    const r = spawnSync(bin, ["image", "prune", ...args], { env, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const kept = prune();
  assert.match(
    kept,
    /^Kept scar's Lambda runtime layer \(\d+(\.\d)? MB\) for the next build: 'scar image prune --all' removes it$/m,
  );
  assert.ok(images.store.hasBlob(runtime), "a plain prune keeps it");
  const json = JSON.parse(prune("--json")) as { kept: { pins: { group: string; digest: string }[] } };
  assert.deepEqual(
    json.kept.pins.map((p) => [p.group, p.digest]),
    [[RUNTIME_PIN_GROUP, runtime]],
  );
  // (in this process: another one still sees this one's leases of the build for a few seconds)
  const all = await images.prune({ all: true });
  assert.deepEqual(all.kept.pins, []);
  assert.ok(!images.store.hasBlob(runtime), "prune --all removes it");
  assert.doesNotMatch(prune(), /Lambda runtime layer/, "and its pin");
});
