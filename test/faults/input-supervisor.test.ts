/**
 * Bad input reaching the supervisor: object keys that cannot be files, keys that would take the
 * script's place, keys that would forge log lines, output files whose names are not UTF-8. Real
 * embedded store (S3 API over loopback), scripts run as host processes by the HostExecutor.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { EmbeddedStoreProvider } from "../../src/engine/embedded-provider.js";
import { type RunningStore, startStore } from "../../src/engine/store/index.js";
import { parseFdl } from "../../src/fdl/index.js";
import type { FunctionSpec } from "../../src/fdl/spec.js";
import { S3Provider } from "../../src/storage/s3.js";
import { HostExecutor, invoke } from "../../src/supervisor/index.js";

const root = mkdtempSync(join(tmpdir(), "scar-faults-input-"));
const work = join(root, "work");
let store: RunningStore;
let s3: S3Client;
let provider: S3Provider;

before(async () => {
  store = await startStore({ dataDir: join(root, "store"), host: "127.0.0.1", port: 0 });
  const creds = { accessKeyId: "scar", secretAccessKey: "scar-secret-key" };
  s3 = new S3Client({ endpoint: store.url, region: "us-east-1", forcePathStyle: true, credentials: creds });
  provider = new S3Provider("s3.default", { endpoint: store.url, ...creds });
  await s3.send(new CreateBucketCommand({ Bucket: "media" }));
});
after(async () => {
  provider.destroy();
  s3.destroy();
  await store.close();
  rmSync(root, { recursive: true, force: true });
});

/** A function reading media/in and writing media/out, whose init_script is `script.sh`. */
function fn(script: string): FunctionSpec {
  const dir = mkdtempSync(join(root, "fdl-"));
  writeFileSync(join(dir, "script.sh"), script);
  const file = join(dir, "fn.yaml");
  const yaml =
    "functions:\n  aws:\n  - lambda:\n      name: fn1\n      container:\n        image: busybox\n" +
    "      init_script: script.sh\n      input:\n      - path: media/in\n      output:\n      - path: media/out\n";
  writeFileSync(file, yaml);
  return parseFdl(file, yaml).functions[0]!;
}

function s3Event(key: string) {
  return {
    Records: [
      {
        eventSource: "aws:s3",
        eventName: "ObjectCreated:Put",
        s3: { bucket: { name: "media" }, object: { key: encodeURIComponent(key).replace(/%2F/g, "/") } },
      },
    ],
  };
}

function run(f: FunctionSpec, event: unknown) {
  return invoke({ fn: f, event, executor: new HostExecutor(), storage: () => provider, workRoot: work });
}

async function keys(prefix: string): Promise<string[]> {
  const r = await s3.send(new ListObjectsV2Command({ Bucket: "media", Prefix: prefix }));
  return (r.Contents ?? []).map((c) => c.Key!).sort();
}

test("input keys that cannot be a file name are a permanent stage-error that says why", async () => {
  const f = fn("echo never ran\n");
  for (const key of [".", "..", "in/a/..", "in/sub/../..", "in/a\0b", `in/${"x".repeat(300)}`]) {
    const r = await run(f, s3Event(key));
    const shown = JSON.stringify(key).slice(0, 40);
    assert.equal(r.reason, "stage-error", `${shown}: ${r.log.join("\n")}`);
    assert.equal(r.permanent, true, `${shown}: a retry cannot mend the key`);
    assert.match(r.detail!, /the input key '.*' cannot be staged as a file/, shown);
    assert.equal(r.output.length, 0, `${shown}: the script never ran`);
    assert.ok(!r.detail!.includes(work), `${shown}: no host path in ${r.detail}`);
  }
  assert.deepEqual(readdirSync(work), [], "the workspaces are removed");
});

test("an input named like the function's staged script neither replaces it nor is lost", async () => {
  await s3.send(new PutObjectCommand({ Bucket: "media", Key: "in/init_script-script.sh", Body: "DATA\n" }));
  const f = fn('echo "script ran"\ncat "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/copy.txt"\n');
  const r = await run(f, s3Event("in/init_script-script.sh"));
  assert.equal(r.reason, "ok", r.log.join("\n"));
  assert.equal(r.output.toString(), "script ran\n");
  const copy = await s3.send(new GetObjectCommand({ Bucket: "media", Key: "out/copy.txt" }));
  assert.equal(await copy.Body!.transformToString(), "DATA\n", "the script read the input's bytes");
});

test("a key with new lines cannot forge supervisor log lines", async () => {
  const forged = "in/x\n2026-01-01 00:00:00,000 - supervisor - ERROR - forged\r.txt";
  await s3.send(new PutObjectCommand({ Bucket: "media", Key: forged, Body: "x" }));
  const f = fn("echo ok\n");
  const r = await run(f, s3Event(forged));
  assert.equal(r.reason, "ok", r.log.join("\n"));
  for (const line of r.log) {
    assert.ok(!/[\r\n]/.test(line), `one line per record: ${JSON.stringify(line)}`);
    assert.match(line, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - supervisor - (DEBUG|INFO|WARNING|ERROR) - /);
  }
  assert.ok(
    r.log.some((l) =>
      l.includes("with key 'in/x\\n2026-01-01 00:00:00,000 - supervisor - ERROR - forged\\r.txt'"),
    ),
    r.log.join("\n"),
  );
});

test("an output file whose name is not UTF-8 is skipped with a warning; the others are uploaded", async () => {
  await s3.send(new PutObjectCommand({ Bucket: "media", Key: "in/names.txt", Body: "x" }));
  const f = fn(
    [
      'printf good > "$TMP_OUTPUT_DIR/good.txt"',
      "printf bad > \"$TMP_OUTPUT_DIR/$(printf 'bad\\377name')\"",
      'mkdir "$TMP_OUTPUT_DIR/$(printf \'dir\\377\')" "$TMP_OUTPUT_DIR/sub"',
      "printf in-bad-dir > \"$TMP_OUTPUT_DIR/$(printf 'dir\\377')/f.txt\"",
      'printf sub > "$TMP_OUTPUT_DIR/sub/z.txt"',
      "",
    ].join("\n"),
  );
  const r = await run(f, s3Event("in/names.txt"));
  assert.equal(r.reason, "ok", r.log.join("\n"));
  assert.deepEqual(
    r.outputs.map((o) => o.key),
    ["out/good.txt", "out/sub/z.txt"],
  );
  const stored = await keys("out/");
  assert.ok(stored.includes("out/good.txt") && stored.includes("out/sub/z.txt"), stored.join(" "));
  assert.ok(!stored.some((k) => /bad|dir|\ufffd/.test(k)), stored.join(" "));
  const warnings = r.log.filter((l) => / - WARNING - .*its name is not valid UTF-8/.test(l));
  assert.equal(warnings.length, 2, r.log.join("\n"));
  assert.ok(
    warnings.some((l) => l.includes("bad\\xffname")),
    warnings.join("\n"),
  );
  assert.ok(
    warnings.some((l) => l.includes("dir\\xff")),
    warnings.join("\n"),
  );
});

test("an input folder that cannot take the input (a full disk) is a stage-error, not a crash", async () => {
  await s3.send(new PutObjectCommand({ Bucket: "media", Key: "in/big.bin", Body: Buffer.alloc(512 * 1024) }));
  const small = join(root, "small");
  mkdirSync(small);
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", small]);
  try {
    const r = await invoke({
      fn: fn("echo never ran\n"),
      event: s3Event("in/big.bin"),
      executor: new HostExecutor(),
      // the store's own provider, in process, as the engine stages files
      storage: () => new EmbeddedStoreProvider("s3.default", store.backend),
      workRoot: small,
    });
    assert.equal(r.reason, "stage-error", r.log.join("\n"));
    assert.match(r.detail!, /ENOSPC/);
    assert.equal(r.permanent, undefined, "a full disk may have room on a retry");
    assert.equal(r.output.length, 0);
  } finally {
    execFileSync("umount", [small]);
  }
});

test("scar_env with a NUL or a name that is not a variable's is an event-error, not a crash", async () => {
  const f = fn('echo "A=$A"\n');
  for (const scar_env of [{ A: "x\u0000y" }, { "A=B": "x" }, { "": "x" }, { "A\u0000": "x" }]) {
    const r = await run(f, { scar_env });
    assert.equal(r.reason, "event-error", JSON.stringify(scar_env));
    assert.match(r.detail!, /scar_env/);
    assert.equal(r.output.length, 0, "the script never ran");
  }
  assert.equal((await run(f, { scar_env: { A: "fine" } })).output.toString(), "A=fine\n");
});
