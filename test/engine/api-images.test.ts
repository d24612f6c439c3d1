/**
 * The engine API's image routes over real HTTP: an archive sent as the body is imported (streamed to
 * disk, the temporary file removed), a pull from a real registry streams its progress as NDJSON, and
 * the list shows both. The imported image then runs a function.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { startApi } from "../../src/engine/api/index.js";
import { useApiEngine } from "./api-harness.js";
import { craftTar } from "./images/helpers.js";
import { busyboxLayer, type Registry, startRegistry, uploadImage } from "./images/registry-harness.js";

let reg: Registry;
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

before(async () => {
  reg = await startRegistry();
  await uploadImage(
    reg.host,
    "lab/bb",
    "1",
    [await busyboxLayer(), craftTar([{ name: "etc/pulled", data: "from the registry" }])],
    { config: { Env: ["PATH=/bin"] } },
  );
});
const t = useApiEngine({ prefix: "scar-api-images-" });
after(async () => {
  await reg?.stop();
});
const call = t.call;

/** A `docker save` archive of a busybox image, without a name of its own. */
async function dockerArchive(): Promise<Buffer> {
  const layer = await busyboxLayer();
  const config = Buffer.from(
    JSON.stringify({
      architecture: process.arch === "arm64" ? "arm64" : "amd64",
      os: "linux",
      config: { Env: ["PATH=/bin"], Cmd: ["/bin/sh"] },
      rootfs: { type: "layers", diff_ids: [`sha256:${sha(layer)}`] },
    }),
  );
  return craftTar([
    { name: `${sha(layer)}/`, type: "dir" },
    { name: `${sha(layer)}/layer.tar`, data: layer },
    { name: `${sha(config)}.json`, data: config },
    {
      name: "manifest.json",
      data: JSON.stringify([
        { Config: `${sha(config)}.json`, RepoTags: null, Layers: [`${sha(layer)}/layer.tar`] },
      ]),
    },
  ]);
}

test("POST /system/images imports the archive in the body; the image runs a function", async () => {
  const r = await call("POST", "/system/images?tag=scar-test/uploaded:1", { body: await dockerArchive() });
  assert.equal(r.status, 201, await r.clone().text());
  const body = await r.json();
  assert.equal(body.ref, "scar-test/uploaded:1");
  assert.match(body.digest, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(body.images[0].names, ["docker.io/scar-test/uploaded:1"]);
  assert.equal(t.engine.images.resolve("scar-test/uploaded:1").digest, body.digest);
  const uploads = join(t.engine.dataDir, "work", "image-uploads");
  assert.ok(!existsSync(uploads) || readdirSync(uploads).length === 0, "the temporary file is removed");

  const svc = {
    name: "uploaded",
    image: "scar-test/uploaded:1",
    memory: "128Mi",
    script: "echo from upload\n",
  };
  const d = await call("POST", "/system/services", { body: svc });
  assert.equal(d.status, 201, await d.text());
  const run = await call("POST", "/run/uploaded", { body: "" });
  assert.equal(Buffer.from(await run.text(), "base64").toString(), "from upload\n");
});

test("bad uploads are 400s with a reason, 401 without auth; no temporary file stays", async () => {
  const junk = await call("POST", "/system/images?tag=scar-test/junk:1", {
    body: Buffer.from("not an archive at all"),
  });
  assert.equal(junk.status, 400);
  assert.match((await junk.json()).error, /^cannot import the image: /);
  const empty = await call("POST", "/system/images", { body: Buffer.alloc(0) });
  assert.equal(empty.status, 400);
  const badTag = await call("POST", "/system/images?tag=UPPER/Case::x", { body: Buffer.from("x") });
  assert.equal(badTag.status, 400);
  assert.match((await badTag.json()).error, /invalid image reference/);
  assert.equal((await call("POST", "/system/images", { body: Buffer.from("x"), auth: null })).status, 401);
  const small = await startApi(t.engine, { port: 0, limits: { maxImageBytes: 1000 } });
  try {
    const big = await fetch(`${small.url}/system/images?tag=scar-test/big:1`, {
      method: "POST",
      headers: { authorization: t.adminAuth },
      body: await dockerArchive(),
    });
    assert.equal(big.status, 413);
  } finally {
    await small.close();
  }
  assert.deepEqual(readdirSync(join(t.engine.dataDir, "work", "image-uploads")), []);
});

async function ndjson(r: Response): Promise<Record<string, unknown>[]> {
  const text = await r.text();
  assert.ok(text.endsWith("\n"), "every line ends with a new line");
  return text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

test("POST /system/images/pull streams the progress as NDJSON and ends with done", async () => {
  const ref = `${reg.host}/lab/bb:1`;
  const r = await call("POST", "/system/images/pull", { body: { image: ref } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "application/x-ndjson");
  const lines = await ndjson(r);
  assert.equal(lines[0]!.type, "resolved");
  // The busybox layer came with the upload before; the second one is new.
  assert.ok(
    lines.some((l) => l.type === "layer" && l.status === "unpacked"),
    JSON.stringify(lines),
  );
  const last = lines[lines.length - 1] as { done: { ref: string; digest: string } };
  assert.equal(last.done.ref, ref);
  assert.equal(last.done.digest, t.engine.images.resolve(ref).digest);

  const again = await ndjson(await call("POST", "/system/images/pull", { body: { image: ref } }));
  assert.deepEqual(again, [last], "an image already present: just the done line");

  const missing = await call("POST", "/system/images/pull", { body: { image: `${reg.host}/lab/none:1` } });
  assert.equal(missing.status, 200);
  const m = await ndjson(missing);
  assert.match(String(m[m.length - 1]!.error), /.+/);

  for (const bad of ["{}", '{"image": ""}', '{"image": "Bad::Ref"}', "not json"]) {
    const b = await call("POST", "/system/images/pull", { body: bad });
    assert.equal(b.status, 400, bad);
    assert.ok((await b.json()).error);
  }
});

test("GET /system/images lists the images with their digests and sizes", async () => {
  const r = await call("GET", "/system/images");
  assert.equal(r.status, 200);
  const { images } = (await r.json()) as { images: { ref: string; digest: string; size: number }[] };
  const refs = images.map((i) => i.ref);
  assert.ok(refs.includes("docker.io/scar-test/uploaded:1"), refs.join());
  assert.ok(refs.includes(`${reg.host}/lab/bb:1`), refs.join());
  for (const i of images) {
    assert.match(i.digest, /^sha256:/);
    assert.ok(i.size > 0);
  }
  assert.equal((await call("GET", "/system/images", { auth: null })).status, 401);
});
