/**
 * A function whose image runs as a non-root user (config `User`) reads its input and writes its output
 * while the engine keeps its data private (umask 077, as `scar serve` runs): the workspace is the
 * container user's, and what the runtime makes for the container (its / and the mount points) is
 * not masked by the engine's umask. Real crun/runc, real store, nothing mocked.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { ContainerExecutor } from "../../src/engine/container-executor.js";
import { Runner } from "../../src/engine/runtime/index.js";
import { type RunningStore, startStore } from "../../src/engine/store/index.js";
import { parseFdl } from "../../src/fdl/index.js";
import type { FunctionSpec } from "../../src/fdl/spec.js";
import { S3Provider } from "../../src/storage/s3.js";
import { invoke } from "../../src/supervisor/index.js";
import { type Fixture, makeFixture } from "../engine/runtime/fixtures.js";

let previousUmask: number;
const root = mkdtempSync(join(tmpdir(), "scar-perms-user-"));
let fixture: Fixture;
/** by "<runtime> <root file system>" */
const runners = new Map<string, Runner>();
let store: RunningStore;
let s3: S3Client;
let provider: S3Provider;

before(async () => {
  fixture = makeFixture(); // the image's layers, as unpacked: modes from the layer, not the umask
  previousUmask = process.umask(0o077);
  for (const runtime of ["crun", "runc"] as const)
    for (const rootfs of ["overlay", "copy"] as const)
      runners.set(
        `${runtime} ${rootfs}`,
        await Runner.open({
          stateDir: join(root, `runtime-${runtime}-${rootfs}`),
          runtime,
          rootfs: rootfs === "copy" ? "copy" : "auto",
        }),
      );
  store = await startStore({ dataDir: join(root, "store"), host: "127.0.0.1", port: 0 });
  const credentials = { accessKeyId: "scar", secretAccessKey: "scar-secret-key" };
  s3 = new S3Client({ endpoint: store.url, region: "us-east-1", forcePathStyle: true, credentials });
  provider = new S3Provider("s3.default", { endpoint: store.url, ...credentials });
  await s3.send(new CreateBucketCommand({ Bucket: "media" }));
});
after(async () => {
  provider.destroy();
  s3.destroy();
  await store.close();
  for (const r of runners.values()) await r.close();
  fixture.cleanup();
  rmSync(root, { recursive: true, force: true });
  process.umask(previousUmask);
});

function fn(script: string): FunctionSpec {
  const dir = mkdtempSync(join(root, "fdl-"));
  writeFileSync(join(dir, "script.sh"), script);
  const yaml = `functions:\n  aws:\n  - lambda:\n      name: fn1\n      memory: 128\n      container:\n        image: busybox\n      init_script: script.sh\n      input:\n      - path: media/in\n      output:\n      - path: media/out\n`;
  const file = join(dir, "fn.yaml");
  writeFileSync(file, yaml);
  return parseFdl(file, yaml).functions[0]!;
}

const s3Event = (key: string) => ({
  Records: [
    {
      eventSource: "aws:s3",
      eventTime: "2026-11-22T10:00:00.000Z",
      s3: { bucket: { name: "media", arn: "arn:aws:s3:::media" }, object: { key } },
    },
  ],
});

for (const [user, runtime, rootfs] of [
  ["app", "crun", "overlay"],
  ["1000:2000", "crun", "overlay"],
  ["app", "crun", "copy"],
  ["app", "runc", "overlay"],
  ["app", "runc", "copy"],
] as const) {
  test(`an image with User '${user}' reads its input and writes its output under the engine's umask 077 (${runtime}, ${rootfs} root file system)`, async () => {
    const key = `in/${user.replace(":", "-")}-${runtime}-${rootfs}.txt`;
    await s3.send(new PutObjectCommand({ Bucket: "media", Key: key, Body: "private data" }));
    const f = fn(
      [
        'echo "id=$(id -u):$(id -g) umask=$(umask) root=$(stat -c %a /)"',
        'tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"',
        'mkdir "$TMP_OUTPUT_DIR/sub" && echo nested > "$TMP_OUTPUT_DIR/sub/n.txt"',
      ].join("\n"),
    );
    const executor = new ContainerExecutor(runners.get(`${runtime} ${rootfs}`)!, {
      image: { ...fixture.image, config: { ...fixture.image.config, User: user } },
      memoryMiB: 128,
    });
    const r = await invoke({
      fn: f,
      event: s3Event(key),
      executor,
      storage: () => provider,
      workRoot: join(root, "work"),
    });
    assert.equal(r.reason, "ok", `${r.log.join("\n")}\n${r.output}`);
    const [uid, gid] = user === "app" ? ["1000", "1000"] : ["1000", "2000"];
    assert.equal(
      r.output.toString(),
      `id=${uid}:${gid} umask=0022 root=755\n`,
      "the container runs as the image's user, with the usual umask and a / it can enter",
    );
    const got = await s3.send(new GetObjectCommand({ Bucket: "media", Key: key.replace("in/", "out/") }));
    assert.equal(await got.Body!.transformToString(), "PRIVATE DATA");
    const nested = await s3.send(new GetObjectCommand({ Bucket: "media", Key: "out/sub/n.txt" }));
    assert.equal(await nested.Body!.transformToString(), "nested\n");
  });
}
