/**
 * `scar update -f FDL --target aws` (the real binary, the real SDK clients) of two functions whose
 * images are prepared in ECR (SCAR's rule: used as they are, nothing built): Lambda at
 * AWS_ENDPOINT_URL_LAMBDA (LambdaHttp, which resolves tags to digests as Lambda does), ECR's
 * DescribeImages and CloudWatch Logs at theirs. All or nothing: a function Lambda refuses puts back
 * the one already updated; then both updated; then, nothing changed, the code is left alone.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { runScar } from "../../cli/harness.js";
import { LambdaHttp } from "./lambda-http.js";

const work = mkdtempSync(join(tmpdir(), "scar-aws-update-"));
const cfgDir = join(work, "cfg");
const ROLE = "arn:aws:iam::123456789012:role/scar-lambda";
const REPO = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/prepared";
const DIGESTS: Record<string, string> = { v1: `sha256:${"1".repeat(64)}`, v2: `sha256:${"2".repeat(64)}` };
let lambda: LambdaHttp;
let server: Server;
let url: string;
const retention: Record<string, number> = {};

/** ECR's DescribeImages and Logs' CreateLogGroup / PutRetentionPolicy (awsJson1.1). */
async function startEcrAndLogs(): Promise<void> {
  server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<string, unknown>;
    const send = (status: number, doc: unknown) => {
      res.writeHead(status, { "Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "req" });
      res.end(JSON.stringify(doc));
    };
    const target = String(req.headers["x-amz-target"] ?? "");
    if (target.endsWith(".DescribeImages")) {
      const tag = (body.imageIds as { imageTag: string }[])[0]!.imageTag;
      if (!DIGESTS[tag]) return send(400, { __type: "ImageNotFoundException", message: "no such image" });
      return send(200, {
        imageDetails: [{ repositoryName: body.repositoryName, imageDigest: DIGESTS[tag], imageTags: [tag] }],
      });
    }
    if (target === "Logs_20140328.CreateLogGroup")
      return send(400, {
        __type: "ResourceAlreadyExistsException",
        message: "The specified log group already exists",
      });
    if (target === "Logs_20140328.PutRetentionPolicy") {
      retention[String(body.logGroupName)] = Number(body.retentionInDays);
      return send(200, {});
    }
    send(400, { __type: "UnknownOperationException", message: target });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const fdl = (tag: string, memory: number) => `functions:
  aws:
${["scar-a", "scar-b"]
  .map(
    (n) => `  - lambda:
      name: ${n}
      memory: ${memory}
      container: {image: "${REPO}:${tag}"}
    cloudwatch: {log_retention_policy_in_days: 14}
`,
  )
  .join("")}`;

before(async () => {
  lambda = await LambdaHttp.start("eu-west-1");
  // Lambda keeps the digest a tag named when the code was set
  lambda.resolve = (u) => {
    const tag = /:(v\d)$/.exec(u)?.[1];
    return tag ? `${REPO}@${DIGESTS[tag]}` : u;
  };
  for (const n of ["scar-a", "scar-b"])
    lambda.add({
      FunctionName: n,
      Role: ROLE,
      MemorySize: 512,
      Timeout: 300,
      Code: { ImageUri: `${REPO}:v1` },
      Environment: { Variables: { FDL: Buffer.from(`{"name":"${n}"}`).toString("base64") } },
      Tags: { createdby: "scar" },
    });
  await startEcrAndLogs();
  mkdirSync(cfgDir, { recursive: true });
  writeFileSync(
    join(cfgDir, "scar.cfg"),
    JSON.stringify({
      scar: { config_version: "2.0.0", target: "aws" },
      local: { data_dir: join(work, "engine") },
      aws: { iam: { role: ROLE }, lambda: { region: "eu-west-1" } },
    }),
  );
});

after(async () => {
  await lambda?.close();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  rmSync(work, { recursive: true, force: true });
});

const scar = (args: string[]) =>
  runScar(args, {
    cfgDir,
    cwd: work,
    env: {
      AWS_ENDPOINT_URL_LAMBDA: lambda.url,
      AWS_ENDPOINT_URL_ECR: url,
      AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: url,
      AWS_ACCESS_KEY_ID: "AKIDSCARTEST",
      AWS_SECRET_ACCESS_KEY: "scar-test-secret",
      AWS_EC2_METADATA_DISABLED: "true",
      AWS_CONFIG_FILE: join(work, "no-aws-config"),
      AWS_SHARED_CREDENTIALS_FILE: join(work, "no-aws-creds"),
    },
  });

const state = (n: string) => {
  const f = lambda.functions.get(n)!;
  return { image: f.resolvedImageUri, memory: f.config.MemorySize };
};

test("update -f: a refused function puts back the one updated before it; then both; then the code is left alone", async () => {
  writeFileSync(join(work, "two.yaml"), fdl("v2", 1024));
  lambda.fail(
    "UpdateFunctionConfiguration",
    1,
    {
      status: 400,
      type: "InvalidParameterValueException",
      message: "MemorySize is not valid for this account",
    },
    "scar-b",
  );
  const failed = await scar(["update", "-f", "two.yaml"]);
  assert.equal(failed.code, 1, failed.stdout);
  assert.equal(
    failed.stderr.split("\n").find((l) => l.startsWith("error:")),
    "error: function 'scar-b': updating the configuration of function 'scar-b' failed: InvalidParameterValueException: MemorySize is not valid for this account; the function was put back as it was; nothing was updated ('scar-a' put back as it was)",
  );
  const v1 = { image: `${REPO}@${DIGESTS.v1}`, memory: 512 };
  assert.deepEqual([state("scar-a"), state("scar-b")], [v1, v1]);

  const ok = await scar(["update", "-f", "two.yaml"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(
    ok.stdout,
    "Function 'scar-a' successfully updated.\nFunction 'scar-b' successfully updated.\n",
  );
  const v2 = { image: `${REPO}@${DIGESTS.v2}`, memory: 1024 };
  assert.deepEqual([state("scar-a"), state("scar-b")], [v2, v2]);
  assert.deepEqual(retention, { "/aws/lambda/scar-a": 14, "/aws/lambda/scar-b": 14 });

  const calls = lambda.calls.length;
  const again = await scar(["update", "-f", "two.yaml"]);
  assert.equal(again.code, 0, again.stderr);
  assert.ok(!lambda.calls.slice(calls).includes("UpdateFunctionCode"), "the same digest: no new code");
  assert.equal(lambda.calls.slice(calls).filter((c) => c === "UpdateFunctionConfiguration").length, 2);
});

test("update -f refuses what init refuses and a function it cannot find; nothing changes", async () => {
  const calls = lambda.calls.length;
  writeFileSync(join(work, "bad.yaml"), fdl("v2", 1024).replace(`${REPO}:v2`, `${REPO}:v9`));
  const missingImage = await scar(["update", "-f", "bad.yaml"]);
  assert.equal(missingImage.code, 1);
  assert.match(missingImage.stderr, /^error: .*the image prepared:v9 is not in ECR/m);
  writeFileSync(
    join(work, "three.yaml"),
    `${fdl("v2", 1024)}  - lambda: {name: scar-c, container: {image: "${REPO}:v2"}}\n`,
  );
  const missing = await scar(["update", "-f", "three.yaml"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^error: Unable to find the function 'scar-c'$/m);
  assert.match(
    missing.stderr,
    /^hint: create it with 'scar init -f three\.yaml -n scar-c'; nothing was updated$/m,
  );
  assert.ok(
    !lambda.calls.slice(calls).some((c) => c.startsWith("Update")),
    lambda.calls.slice(calls).join(" "),
  );
});
