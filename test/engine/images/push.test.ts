import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { DockerCredentials } from "../../../src/engine/images/auth.js";
import { ImageStore, type PushEvent } from "../../../src/engine/images/index.js";
import { busyboxRootfs, tempDir } from "./helpers.js";
import {
  busyboxLayer,
  type FaultProxy,
  PASSWORD,
  type Registry,
  startProxy,
  startRegistry,
  USER,
  uploadImage,
} from "./registry-harness.js";

const work = tempDir("scar-push-");
let src: Registry;
let dst: Registry;
let tokenReg: Registry;
let proxy: FaultProxy;
let n = 0;
const newStore = (credentials?: DockerCredentials) =>
  new ImageStore({ dataDir: join(work, `store${n++}`), ...(credentials ? { credentials } : {}) });

before(async () => {
  [src, dst, tokenReg] = await Promise.all([
    startRegistry(),
    startRegistry(),
    startRegistry({ auth: "token" }),
  ]);
  proxy = await startProxy(dst.host);
  await uploadImage(src.host, "lab/bb", "1", [await busyboxLayer()], { config: { Cmd: ["/bin/true"] } });
});
after(async () => {
  await proxy?.close();
  await Promise.all([src?.stop(), dst?.stop(), tokenReg?.stop()]);
  fs.rmSync(work, { recursive: true, force: true });
});

function statuses(events: PushEvent[]): string[] {
  return events.filter((e) => e.type === "blob").map((e) => (e as { status: string }).status);
}

test("push monolithic to another registry, then pull it back unchanged", async () => {
  const images = newStore();
  const rec = await images.pull(`${src.host}/lab/bb:1`);
  const events: PushEvent[] = [];
  const out = await images.push(`${src.host}/lab/bb:1`, `${proxy.host}/copy/bb:v1`, {
    onProgress: (e) => events.push(e),
  });
  assert.equal(out.digest, rec.digest, "the manifest is pushed byte for byte");
  assert.deepEqual(statuses(events), ["uploading", "uploaded", "uploading", "uploaded"]);
  const patches = proxy.log.filter((l) => l.startsWith("PATCH"));
  assert.equal(patches.length, 0, "monolithic: no PATCH");
  const again = newStore();
  const back = await again.pull(`${dst.host}/copy/bb:v1`);
  assert.equal(back.digest, rec.digest);
  assert.deepEqual(again.resolve(back.digest).config.Cmd, ["/bin/true"]);

  // pushing again uploads nothing
  const events2: PushEvent[] = [];
  await images.push(rec.digest, `${dst.host}/copy/bb:v2`, { onProgress: (e) => events2.push(e) });
  assert.deepEqual(statuses(events2), ["exists", "exists"]);
});

test("chunked upload of an imported image", async () => {
  const images = newStore();
  const rootfs = busyboxRootfs(join(work, "rootfs"));
  await images.import(rootfs, { tag: "local/fn:1", changes: ["CMD /bin/true"] });
  proxy.log.length = 0;
  const out = await images.push("local/fn:1", `${proxy.host}/chunked/fn:1`, { chunkSize: 256 * 1024 });
  const patches = proxy.log.filter((l) => l.startsWith("PATCH"));
  assert.ok(patches.length >= 8, `the 2 MB layer went in chunks (${patches.length} PATCHes)`);
  const again = newStore();
  const back = await again.pull(`${dst.host}/chunked/fn:1`);
  assert.equal(back.digest, out.digest);
  const dir = again.resolve(back.digest).layerDirs[0]!;
  assert.equal(fs.statSync(join(dir, "bin/busybox")).size, fs.statSync("/bin/busybox").size);
});

test("cross-repository mount within one registry", async () => {
  const images = newStore();
  await images.pull(`${src.host}/lab/bb:1`);
  const events: PushEvent[] = [];
  await images.push(`${src.host}/lab/bb:1`, `${src.host}/other/bb:1`, { onProgress: (e) => events.push(e) });
  assert.deepEqual(statuses(events), ["mounted", "mounted"]);
  const back = await newStore().pull(`${src.host}/other/bb:1`);
  assert.equal(back.digest, images.find(`${src.host}/lab/bb:1`)!.digest);
});

test("push with bearer-token auth", async () => {
  const cfg = join(work, "docker-config.json");
  fs.writeFileSync(
    cfg,
    JSON.stringify({
      auths: { [tokenReg.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString("base64") } },
    }),
  );
  const images = newStore(new DockerCredentials(cfg));
  await images.pull(`${src.host}/lab/bb:1`);
  const out = await images.push(`${src.host}/lab/bb:1`, `${tokenReg.host}/private/bb:1`);
  const back = await newStore(new DockerCredentials(cfg)).pull(`${tokenReg.host}/private/bb:1`);
  assert.equal(back.digest, out.digest);
  await assert.rejects(
    newStore(new DockerCredentials(join(work, "none.json"))).push(
      `${src.host}/lab/bb:1`,
      `${tokenReg.host}/private/x:1`,
    ),
    /not in the local store/,
  );
  const anon = newStore(new DockerCredentials(join(work, "none.json")));
  await anon.pull(`${src.host}/lab/bb:1`);
  await assert.rejects(
    anon.push(`${src.host}/lab/bb:1`, `${tokenReg.host}/private/x:1`),
    /denied|UNAUTHORIZED/,
  );
});
