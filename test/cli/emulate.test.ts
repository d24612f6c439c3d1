/**
 * `scar emulate`: the function's Lambda image built and run here, on an S3 event for an object of the
 * local engine's store (the engine started by the test's scar.cfg), and on a direct payload.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ServiceException,
} from "@aws-sdk/client-s3";
import { busyboxRootfs } from "../engine/images/helpers.js";
import { S3LS, S3LS_APPLETS } from "../engine/s3ls-shell.js";
import { runScar, useCliWorkspace } from "./harness.js";

const { dir, cfgDir, dataDir, ok, importImage } = useCliWorkspace("scar-emulate-", { target: "local" });
const IMAGE = "scar-test/emulate:1";
let s3: S3Client;
let s3Url: string;

const emulate = (args: string[]) => runScar(["emulate", ...args], { cfgDir, cwd: dir, timeout: 300_000 });

before(async () => {
  const root = join(dir, "img");
  busyboxRootfs(root, [...new Set(["sh", "echo", "cat", "tr", "basename", ...S3LS_APPLETS])]);
  await importImage(root, IMAGE, ["ENV PATH=/bin"]);
  writeFileSync(
    join(dir, "up.sh"),
    'tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"\necho "event: $EVENT lambda: $LAMBDA_VAR"\n',
  );
  writeFileSync(
    join(dir, "fn.yaml"),
    JSON.stringify({
      functions: {
        aws: [
          {
            lambda: {
              name: "emu-up",
              runtime: "image",
              memory: 256,
              timeout: 60,
              init_script: "up.sh",
              container: { image: IMAGE, timeout_threshold: 2 },
              environment: { Variables: { LAMBDA_VAR: "from-lambda" } },
              input: [{ storage_provider: "s3", path: "emu-in/docs" }],
              output: [{ storage_provider: "s3", path: "emu-out/docs" }],
            },
          },
        ],
      },
    }),
  );
  // a function that lists its own input bucket and another one with the key pair it is given
  writeFileSync(
    join(dir, "peek.sh"),
    `${S3LS}\necho "pair=$AWS_ACCESS_KEY_ID $AWS_SECRET_ACCESS_KEY"\ns3ls emu-in\ns3ls emu-secret\n`,
  );
  writeFileSync(
    join(dir, "peek.yaml"),
    JSON.stringify({
      functions: {
        aws: [
          {
            lambda: {
              name: "emu-peek",
              runtime: "image",
              timeout: 60,
              init_script: "peek.sh",
              container: { image: IMAGE, timeout_threshold: 2 },
              input: [{ storage_provider: "s3", path: "emu-in/peek" }],
              output: [{ storage_provider: "s3", path: "emu-out/peek" }],
            },
          },
        ],
      },
    }),
  );
  await ok(["engine", "start"]);
  const info = JSON.parse(readFileSync(join(dataDir, "engine.json"), "utf8")) as { s3: string };
  const keys = (
    JSON.parse(readFileSync(join(dataDir, "credentials"), "utf8")) as {
      s3: { accessKeyId: string; secretAccessKey: string };
    }
  ).s3;
  s3Url = info.s3;
  s3 = new S3Client({ endpoint: info.s3, region: "us-east-1", forcePathStyle: true, credentials: keys });
  for (const b of ["emu-in", "emu-out", "emu-secret"]) await s3.send(new CreateBucketCommand({ Bucket: b }));
});

test("--s3: the object of the engine's store goes through the function image; --json has response and logs", async () => {
  await s3.send(new PutObjectCommand({ Bucket: "emu-in", Key: "docs/a b.txt", Body: "quiet words\n" }));
  const r = await emulate(["-f", "fn.yaml", "--s3", "emu-in/docs/a b.txt", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as {
    LambdaOutput: { StatusCode: number; Payload: string; Logs: string[]; RequestId: string };
  };
  assert.equal(doc.LambdaOutput.StatusCode, 200);
  const logs = doc.LambdaOutput.Logs.join("\n");
  assert.match(logs, new RegExp(`^START RequestId: ${doc.LambdaOutput.RequestId} Version: \\$LATEST$`, "m"));
  assert.match(logs, / - supervisor - INFO - Uploading file 'docs\/a b\.txt' to bucket 'emu-out'$/m);
  assert.match(logs, /^REPORT RequestId: .*Memory Size: 256 MB/m);
  const out = await s3.send(new GetObjectCommand({ Bucket: "emu-out", Key: "docs/a b.txt" }));
  assert.equal(await out.Body!.transformToString(), "QUIET WORDS\n");
});

test("-p and --api-body: the output on stdout, the logs on stderr; bad flags refused", async () => {
  const r = await emulate(["-f", "fn.yaml", "-p", '{"hello":"there"}']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Request Id: \S+\n/);
  assert.match(r.stdout, /"hello":"there"\} lambda: from-lambda$/m);
  assert.match(r.stderr, /^END RequestId: /m);
  // an API Gateway event: its base64 body is the script's input file
  writeFileSync(join(dir, "body.txt"), "posted body\n");
  const api = await emulate(["-f", "fn.yaml", "--api-body", "body.txt", "--json"]);
  assert.equal(api.code, 0, api.stderr);
  const doc = JSON.parse(api.stdout) as { LambdaOutput: { StatusCode: number; Logs: string[] } };
  assert.equal(doc.LambdaOutput.StatusCode, 200);
  const uploaded = /Uploading file '(docs\/[^']+)' to bucket 'emu-out'$/m.exec(
    doc.LambdaOutput.Logs.join("\n"),
  );
  assert.ok(uploaded, doc.LambdaOutput.Logs.join("\n"));
  const out = await s3.send(new GetObjectCommand({ Bucket: "emu-out", Key: uploaded[1] }));
  assert.equal(await out.Body!.transformToString(), "POSTED BODY\n");
  const bad = await emulate(["-f", "fn.yaml", "--s3", "no-key-here"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--s3: 'no-key-here' is not BUCKET\/KEY/);
  const two = await emulate(["-f", "fn.yaml", "-p", "{}", "--api-body", "fn.yaml"]);
  assert.equal(two.code, 2);
  assert.match(two.stderr, /give one event/);
});

test("the function gets a key pair of its own buckets, not the admin's: 403 elsewhere; returned at the end", async () => {
  await s3.send(new PutObjectCommand({ Bucket: "emu-secret", Key: "secret.txt", Body: "not for functions" }));
  const r = await emulate(["-f", "peek.yaml", "-p", "{}", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const logs = (JSON.parse(r.stdout) as { LambdaOutput: { Logs: string[] } }).LambdaOutput.Logs.join("\n");
  assert.match(logs, /^emu-in: HTTP\/1.1 200 OK/m);
  assert.match(logs, /^emu-secret: HTTP\/1.1 403 Forbidden <Code>AccessDenied<\/Code>$/m);
  const [, id, secret] = /^pair=(\S+) (\S+)$/m.exec(logs) ?? [];
  assert.ok(id && secret, logs);
  assert.notEqual(id, (await s3.config.credentials()).accessKeyId, "not the store's admin key pair");
  // given back when the run ended: the store no longer knows it
  const lent = new S3Client({
    endpoint: s3Url,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: id, secretAccessKey: secret },
  });
  await assert.rejects(
    lent.send(new ListObjectsV2Command({ Bucket: "emu-in" })),
    (e: S3ServiceException) => e.name === "InvalidAccessKeyId",
  );
  lent.destroy();
});
