/**
 * `scar update` on the aws target over the client mocks: the image published again, UpdateFunctionCode
 * only when its digest changed, each change waited for (LastUpdateStatus), UpdateFunctionConfiguration,
 * the refusals of init and of what update cannot change in place, and the way back after a failure.
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import { UpdateFunctionConfigurationCommand } from "@aws-sdk/client-lambda";
import type { AwsTarget } from "../../../src/targets/aws/aws-target.js";
import { TargetError } from "../../../src/targets/target-error.js";
import { type FakeState, fakeAws, newState } from "./fake-aws.js";
import {
  ACCOUNT,
  awsErr,
  type Call,
  fakePublisher,
  fdl,
  IMAGE_URI,
  type Mocks,
  mockAws,
  names,
  target,
} from "./fixtures.js";

let m: Mocks;
let calls: Call[];
let restore: () => void;
let s: FakeState;

const FDL = (lambdaExtra = "", entryExtra = "") => `
functions:
  aws:
  - lambda:
      name: scar-cowsay
      init_script: cow.sh
      memory: 512
      timeout: 300
      container: {image: grycap/cowsay}
      environment: {Variables: {GREETING: hola}}
      input: [{storage_provider: s3, path: scar-in/input}]
${lambdaExtra}${entryExtra}`;

const NEW_URI = `${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/scar-cowsay@sha256:${"b".repeat(64)}`;

async function update(t: AwsTarget, text: string) {
  const f = fdl(text);
  return t.deploy(f.functions[0]!, { storageProviders: f.storage_providers, update: true });
}

beforeEach(async () => {
  ({ mocks: m, calls, restore } = mockAws());
  s = newState();
  fakeAws(m, s);
  const f = fdl(FDL());
  await target().t.deploy(f.functions[0]!, { storageProviders: f.storage_providers, update: false });
  calls.length = 0;
});
afterEach(() => restore());

test("the same script and image: the code is left alone, the configuration updated and waited for", async () => {
  const { t, publisher } = target();
  const info = await update(
    t,
    FDL("      memory: 1024\n      timeout: 60\n").replace(/ {6}memory: 512\n {6}timeout: 300\n/, ""),
  );
  assert.deepEqual(publisher.published, ["scar-cowsay@eu-west-1"], "built and pushed again (reproducible)");
  const seq = names(calls).filter((n) => n.startsWith("lambda."));
  assert.deepEqual(seq, [
    "lambda.GetFunction",
    "lambda.GetFunction",
    "lambda.UpdateFunctionConfiguration",
    "lambda.GetFunctionConfiguration", // InProgress
    "lambda.GetFunctionConfiguration", // Successful
  ]);
  const input = calls.find((c) => c.command === "UpdateFunctionConfiguration")!.input;
  assert.equal(input.MemorySize, 1024);
  assert.equal(input.Timeout, 60);
  assert.equal(input.Role, `arn:aws:iam::${ACCOUNT}:role/scar-lambda`);
  const vars = (input.Environment as { Variables: Record<string, string> }).Variables;
  assert.equal(vars.GREETING, "hola");
  assert.equal(JSON.parse(Buffer.from(vars.FDL!, "base64").toString()).memory, 1024);
  assert.equal(info.memory, 1024);
  assert.equal(s.functions.get("scar-cowsay")!.config.MemorySize, 1024);
  assert.ok(names(calls).includes("logs.PutRetentionPolicy"));
});

test("a new image: UpdateFunctionCode, waited for, before the configuration", async () => {
  const { t } = target({ publisher: async () => fakePublisher(NEW_URI) });
  await update(t, FDL());
  const seq = names(calls)
    .filter((n) => n.startsWith("lambda."))
    .slice(2);
  assert.deepEqual(seq, [
    "lambda.UpdateFunctionCode",
    "lambda.GetFunctionConfiguration",
    "lambda.GetFunctionConfiguration",
    "lambda.UpdateFunctionConfiguration",
    "lambda.GetFunctionConfiguration",
    "lambda.GetFunctionConfiguration",
  ]);
  assert.equal(calls.find((c) => c.command === "UpdateFunctionCode")!.input.ImageUri, NEW_URI);
  assert.equal(s.functions.get("scar-cowsay")!.imageUri, NEW_URI);
});

test("bad input is refused as init refuses it, and nothing changes", async () => {
  const { t, publisher } = target();
  const refused = async (text: string, message: RegExp) => {
    await assert.rejects(update(t, text), (e: Error) => {
      // the FDL library refuses some values first, as for init
      assert.ok(e instanceof TargetError || e.name === "FdlError", String(e));
      assert.match(e.message, message);
      return true;
    });
  };
  await refused(FDL().replace("memory: 512", "memory: 20000"), /memory 20000 (MB )?is out of/);
  await refused(FDL().replace("timeout: 300", "timeout: 1000"), /timeout 1000 (s )?is out of/);
  await refused(FDL("", "    iam: {role: not-an-arn}\n"), /iam\.role 'not-an-arn' is not an IAM role ARN/);
  await refused(
    FDL("      region: mars-1\n"),
    /'mars-1' \(function 'scar-cowsay': lambda\.region\) is not an AWS region/,
  );
  await refused(
    FDL().replace("scar-in/input", "other-in/input"),
    /update cannot change its input buckets \(scar-in\/input -> other-in\/input\)/,
  );
  await refused(FDL("", "    api_gateway: {name: cow-api}\n"), /update cannot add an API/);
  await refused(
    FDL(
      "      execution_mode: lambda-batch\n",
      "    batch: {compute_resources: {subnets: [subnet-1], security_group_ids: [sg-1]}}\n",
    ),
    /update cannot change execution_mode from lambda to lambda-batch/,
  );
  await refused(
    FDL().replace("name: scar-cowsay", "name: not-there"),
    /^Unable to find the function 'not-there'$/,
  );
  s.functions.get("scar-cowsay")!.tags = {};
  await refused(FDL(), /exists in eu-west-1 but scar did not create it/);
  assert.deepEqual(publisher.published, [], "nothing built");
  assert.ok(!names(calls).some((n) => /Update|Create|Delete|Put/.test(n)), names(calls).join(" "));
});

test("a configuration Lambda refuses after the new code: the function is put back as it was", async () => {
  const before = structuredClone(s.functions.get("scar-cowsay")!.config);
  m.lambda
    .on(UpdateFunctionConfigurationCommand, { MemorySize: 2048 })
    .rejects(awsErr("InvalidParameterValueException", "MemorySize is not valid for this account"));
  const { t } = target({ publisher: async () => fakePublisher(NEW_URI) });
  const withVpc = FDL("      vpc: {SubnetIds: [subnet-1], SecurityGroupIds: [sg-1]}\n");
  await assert.rejects(update(t, withVpc.replace("memory: 512", "memory: 2048")), (e: Error) => {
    assert.equal(
      e.message,
      "updating the configuration of function 'scar-cowsay' failed: InvalidParameterValueException: MemorySize is not valid for this account; the function was put back as it was",
    );
    return true;
  });
  const fn = s.functions.get("scar-cowsay")!;
  assert.equal(fn.imageUri, IMAGE_URI, "the earlier image again");
  assert.equal(fn.config.MemorySize, before.MemorySize);
  assert.deepEqual(fn.config.Environment, before.Environment);
  const configs = calls.filter((c) => c.command === "UpdateFunctionConfiguration").map((c) => c.input);
  assert.deepEqual(configs[0]!.VpcConfig, { SubnetIds: ["subnet-1"], SecurityGroupIds: ["sg-1"] });
  assert.deepEqual(
    configs.at(-1)!.VpcConfig,
    { SubnetIds: [], SecurityGroupIds: [] },
    "the VPC taken away again",
  );
});

test("update -n: memory, timeout and Lambda variables alone, checked as init checks them", async () => {
  const { t } = target();
  const info = await t.updateSettings("scar-cowsay", { memory: 256, variables: { MODE: "fast" } });
  assert.equal(info.memory, 256);
  const input = calls.find((c) => c.command === "UpdateFunctionConfiguration")!.input;
  assert.equal(input.Timeout, 300, "unchanged values sent as they are");
  const vars = (input.Environment as { Variables: Record<string, string> }).Variables;
  assert.equal(vars.MODE, "fast");
  assert.ok(vars.FDL, "scar's own variables kept");
  await assert.rejects(
    t.updateSettings("scar-cowsay", { timeout: 901 }),
    /timeout 901 s is out of Lambda's range/,
  );
  await assert.rejects(
    t.updateSettings("scar-cowsay", { role: "arn:aws:iam::1:role/x" }),
    /is not an IAM role ARN/,
  );
  await assert.rejects(
    t.updateSettings("nope", { memory: 256 }),
    /^TargetError: Unable to find the function 'nope'$/,
  );
});
