/**
 * The function image end to end: built without Docker from three base images (glibc + ImageMagick,
 * musl, scratch + static busybox) into a real image store, run by real crun in the Lambda emulator,
 * on an S3 event for an object in scar's embedded store (AWS_ENDPOINT_URL). Plus reproducibility and
 * the inputs refused before anything is built.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ImageStore } from "../../src/engine/images/index.js";
import { Runner } from "../../src/engine/runtime/index.js";
import { parseFdl } from "../../src/fdl/load.js";
import { ImageFunction } from "../../src/lambda/emulator/image-runtime.js";
import { buildFunctionImage } from "../../src/lambda/image/builder.js";
import type { BuildFunctionImageInput, ImageSource } from "../../src/lambda/image/types.js";
import { CREDS } from "../engine/store/helpers.js";
import { type Lab, lab, responseOutput, s3Event } from "./helpers.js";
import {
  hasImageMagick,
  hasMusl,
  imageMagickRootfs,
  MAGICK_CONVERT,
  muslRootfs,
  scratchBusyboxRootfs,
} from "./image-helpers.js";

const IN = "img-in";
const OUT = "img-out";
let l: Lab;
let work: string;
let images: ImageStore;
let runner: Runner;
const running: ImageFunction[] = [];

before(async () => {
  l = await lab([IN, OUT]);
  work = mkdtempSync(join(tmpdir(), "scar-fnimage-"));
  images = new ImageStore({ dataDir: join(work, "data") });
  runner = await Runner.open({ stateDir: join(work, "runtime") });
});
after(async () => {
  for (const f of running) await f.close();
  await runner?.close();
  await l.stop();
  rmSync(work, { recursive: true, force: true });
});

/** An FDL file for one function of image `image` with `script`, parsed as `scar init` would. */
function fdl(name: string, image: string, script: string, extra: Record<string, unknown> = {}) {
  const dir = join(work, `fdl-${name}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "script.sh"), script);
  const text = JSON.stringify({
    functions: {
      aws: [
        {
          lambda: {
            name,
            runtime: "image",
            memory: 256,
            timeout: 60,
            init_script: "script.sh",
            container: { image, timeout_threshold: 2, environment: { Variables: { GREETING: "hola" } } },
            input: [{ storage_provider: "s3", path: `${IN}/${name}` }],
            output: [{ storage_provider: "s3", path: `${OUT}/${name}` }],
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

async function importRootfs(name: string, fill: (root: string) => void): Promise<string> {
  const root = join(work, `rootfs-${name}`);
  mkdirSync(root, { recursive: true });
  fill(root);
  const tag = `localhost/${name}:1`;
  await images.import(root, { format: "rootfs", tag, changes: ["ENV PATH=/usr/bin:/bin"] });
  return tag;
}

function buildInput(f: ReturnType<typeof fdl>, source: ImageSource, tag: string): BuildFunctionImageInput {
  return { spec: f.spec, storageProviders: f.storageProviders, source, images, tag };
}

async function emulate(reference: string, name: string, memoryMB = 256): Promise<ImageFunction> {
  const fn = await ImageFunction.start({
    runner,
    images,
    reference,
    functionName: name,
    memoryMB,
    env: {
      AWS_ENDPOINT_URL: l.store.store.url,
      AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
      AWS_EC2_METADATA_DISABLED: "true",
    },
  });
  running.push(fn);
  return fn;
}

function assertScarLogs(logs: string, requestId: string, upload: string): void {
  assert.match(logs, new RegExp(`^START RequestId: ${requestId} Version: \\$LATEST$`, "m"));
  assert.match(logs, / - supervisor - INFO - SUPERVISOR: Initializing AWS Lambda supervisor$/m);
  assert.match(
    logs,
    new RegExp(` - supervisor - INFO - Uploading file '${upload}' to bucket '${OUT}'$`, "m"),
  );
  assert.match(logs, new RegExp(`^END RequestId: ${requestId}$`, "m"));
  assert.match(
    logs,
    new RegExp(`^REPORT RequestId: ${requestId}\\tDuration: [0-9.]+ ms\\t.*Memory Size: 256 MB`, "m"),
  );
}

test("glibc + ImageMagick: an S3 event turns the uploaded PNG grey in the output bucket", {
  skip: !hasImageMagick() && "imagemagick-6.q16 is not installed (scripts/install-deps.sh)",
}, async () => {
  const base = await importRootfs("magick", imageMagickRootfs);
  const f = fdl(
    "grayify",
    base,
    [
      'out="$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"',
      'echo "Converting $INPUT_FILE_PATH to grayscale as $out ($GREETING)"',
      'convert "$INPUT_FILE_PATH" -type Grayscale "$out"',
    ].join("\n"),
  );
  const built = await buildFunctionImage(
    buildInput(f, { kind: "registry", reference: base }, "scar-lambda/grayify:latest"),
  );
  const png = join(work, "red.png");
  execFileSync(MAGICK_CONVERT, ["-size", "4x4", "xc:red", png]);
  await l.put(IN, "grayify/red.png", execFileSync("cat", [png]));
  const fn = await emulate(built.reference, "grayify");
  const r = await fn.invoke(s3Event(IN, "grayify/red.png"), { timeoutMs: 60_000 });
  assert.equal(r.status, "success", JSON.stringify(r));
  assert.match(responseOutput(r.body).toString(), /Converting \/tmp\/.*\/red\.png to grayscale .*\(hola\)/);
  const out = await l.get(OUT, "grayify/red.png");
  assert.ok(out, "the output object is in the output bucket");
  const got = join(work, "got.png");
  writeFileSync(got, out);
  const type = execFileSync("identify-im6.q16", ["-format", "%[type] %[colorspace]", got], {
    encoding: "utf8",
  });
  assert.match(type, /Gray/, `the output is grey: ${type}`);
  assertScarLogs(r.logs!.join("\n"), r.requestId, "grayify/red.png");
});

test("musl (no glibc in the image): a musl program runs on the staged object", {
  skip: !hasMusl() && "musl and musl-tools are not installed (scripts/install-deps.sh)",
}, async () => {
  const base = await importRootfs("musl", (root) => muslRootfs(root, work));
  const f = fdl(
    "upcase",
    base,
    'upcase < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"\necho done',
  );
  const built = await buildFunctionImage(
    buildInput(f, { kind: "registry", reference: base }, "scar-lambda/upcase:latest"),
  );
  // the image really has no glibc: only musl's loader and scar's own libraries under /opt/scar
  const merged = join(work, "upcase-merged");
  images.materialize(built.reference, merged);
  assert.equal(
    execFileSync("sh", ["-c", `cd ${merged} && find . -name 'libc.so*' -not -path './opt/scar/*' | wc -l`], {
      encoding: "utf8",
    }).trim(),
    "0",
  );
  rmSync(merged, { recursive: true, force: true });
  await l.put(IN, "upcase/words.txt", "hello musl\n");
  const fn = await emulate(built.reference, "upcase");
  const r = await fn.invoke(s3Event(IN, "upcase/words.txt"), { timeoutMs: 60_000 });
  assert.equal(r.status, "success", JSON.stringify(r));
  assert.equal((await l.get(OUT, "upcase/words.txt"))?.toString(), "HELLO MUSL\n[musl]\n");
  assertScarLogs(r.logs!.join("\n"), r.requestId, "upcase/words.txt");
});

test("scratch + static busybox: the function runs with nothing else in the image", async () => {
  const base = await importRootfs("scratch", scratchBusyboxRootfs);
  const f = fdl(
    "reverse",
    base,
    'rev < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"\necho "$GREETING from scratch"',
  );
  const built = await buildFunctionImage(
    buildInput(f, { kind: "registry", reference: base }, "scar-lambda/reverse:latest"),
  );
  await l.put(IN, "reverse/line.txt", "abc def\n");
  const fn = await emulate(built.reference, "reverse");
  const r = await fn.invoke(s3Event(IN, "reverse/line.txt"), { timeoutMs: 60_000 });
  assert.equal(r.status, "success", JSON.stringify(r));
  assert.equal(responseOutput(r.body).toString(), "hola from scratch\n");
  assert.equal((await l.get(OUT, "reverse/line.txt"))?.toString(), "fed cba\n");
  assertScarLogs(r.logs!.join("\n"), r.requestId, "reverse/line.txt");
  // a second event reuses the warm environment: no Init Duration in its REPORT
  await l.put(IN, "reverse/two.txt", "xy\n");
  const r2 = await fn.invoke(s3Event(IN, "reverse/two.txt"), { timeoutMs: 60_000 });
  assert.equal(r2.status, "success", JSON.stringify(r2));
  assert.doesNotMatch(r2.logs!.join("\n"), /Init Duration/);
  assert.equal((await l.get(OUT, "reverse/two.txt"))?.toString(), "yx\n");
});

test("memory is the container's limit: a script past it is killed, the same script fits in more", async () => {
  const base = await importRootfs("scratch-mem", scratchBusyboxRootfs);
  // a 160 MB shell variable: over 128 MB with the runtime, under 512 MB
  // biome-ignore lint/suspicious/noTemplateCurlyInString: ${#x} is the shell's
  const f = fdl("hog", base, 'x=$(head -c 160000000 /dev/zero | tr "\\0" a)\necho "held ${#x}"');
  const built = await buildFunctionImage(
    buildInput(f, { kind: "registry", reference: base }, "scar-lambda/hog:latest"),
  );
  const small = await emulate(built.reference, "hog", 128);
  const r = await small.invoke({}, { timeoutMs: 60_000 });
  assert.equal(r.status, "error", JSON.stringify(r));
  // the kernel kills the biggest process in the container: the script, or the runtime itself
  if (r.errorType === "UserScriptError")
    assert.match(r.logs!.join("\n"), /User script exited with code 137!/);
  else {
    assert.equal(r.errorType, "Runtime.OutOfMemory", JSON.stringify(r));
    assert.match(r.logs!.join("\n"), /^RequestId: \S+ Error: Runtime exited with error: signal: killed$/m);
  }
  assert.match(r.logs!.join("\n"), /Memory Size: 128 MB/);
  const big = await emulate(built.reference, "hog", 512);
  const r2 = await big.invoke({}, { timeoutMs: 60_000 });
  assert.equal(r2.status, "success", JSON.stringify(r2));
  assert.equal(responseOutput(r2.body).toString(), "held 160000000\n");
});

test("timeout_threshold in the image: the script is stopped before the deadline, Lambda's error answers", async () => {
  const base = await importRootfs("scratch-slow", scratchBusyboxRootfs);
  const f = fdl("slow", base, "echo started\nsleep 30\necho never");
  const built = await buildFunctionImage(
    buildInput(f, { kind: "registry", reference: base }, "scar-lambda/slow:latest"),
  );
  const fn = await emulate(built.reference, "slow");
  const r = await fn.invoke({}, { timeoutMs: 5_000 });
  assert.equal(r.status, "error", JSON.stringify(r));
  assert.equal(r.errorType, "ContainerTimeoutExpiredWarning");
  const logs = r.logs!.join("\n");
  assert.match(logs, /^started$/m);
  assert.doesNotMatch(logs, /^never$/m);
  assert.match(logs, /Container timeout expired/);
});
