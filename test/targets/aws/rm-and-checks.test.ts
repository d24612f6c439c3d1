/** `scar rm` on AWS (SCAR's order, parts already gone) and bad input that must destroy nothing. */
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import { GetFunctionCommand } from "@aws-sdk/client-lambda";
import { type FakeState, fakeAws, newState } from "./fake-aws.js";
import { ACCOUNT, awsErr, type Call, fdl, type Mocks, mockAws, names, target } from "./fixtures.js";

// biome-ignore lint/suspicious/noExplicitAny: call inputs are read field by field
type Loose = any;

let m: Mocks;
let calls: Call[];
let restore: () => void;
let s: FakeState;

beforeEach(() => {
  ({ mocks: m, calls, restore } = mockAws());
  s = newState();
  fakeAws(m, s);
});
afterEach(() => restore());

const FDL = (extra = "", name = "scar-cowsay") => `
functions:
  aws:
  - lambda:
      name: ${name}
      execution_mode: lambda-batch
      init_script: cow.sh
      container: {image: grycap/cowsay}
      input: [{storage_provider: s3, path: scar-in/input}]
    api_gateway: {name: cow-api}
    batch:
      compute_resources: {subnets: [subnet-1], security_group_ids: [sg-1]}
${extra}`;

async function init(text = FDL()) {
  const f = fdl(text);
  await target().t.deploy(f.functions[0]!, { storageProviders: f.storage_providers, update: false });
}

test("init of lambda-batch makes the compute environment, queue and a binary-mode job definition", async () => {
  await init();
  const batch = calls.filter((c) => c.service === "batch");
  assert.deepEqual(names(batch), [
    "batch.DescribeComputeEnvironments",
    "batch.CreateComputeEnvironment",
    "batch.DescribeComputeEnvironments",
    "batch.DescribeJobQueues",
    "batch.CreateJobQueue",
    "batch.DescribeJobQueues",
    "batch.RegisterJobDefinition",
  ]);
  const ce = batch[1]!.input as Loose;
  assert.equal(ce.computeEnvironmentName, "scar-cowsay");
  assert.equal(ce.serviceRole, `arn:aws:iam::${ACCOUNT}:role/service-role/AWSBatchServiceRole`);
  assert.deepEqual(ce.computeResources.subnets, ["subnet-1"]);
  assert.equal(ce.computeResources.instanceRole, `arn:aws:iam::${ACCOUNT}:instance-profile/ecsInstanceRole`);
  assert.equal(
    ce.computeResources.launchTemplate,
    undefined,
    "SCAR's supervisor template is not needed by scar's image",
  );
  const q = batch[4]!.input as Loose;
  assert.deepEqual(q.computeEnvironmentOrder, [{ order: 1, computeEnvironment: "scar-cowsay" }]);
  const jd = batch[6]!.input as Loose;
  assert.equal(jd.jobDefinitionName, "scar-cowsay");
  assert.equal(
    jd.containerProperties.image.split("@")[0],
    `${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/scar-cowsay`,
  );
  assert.deepEqual(jd.containerProperties.resourceRequirements, [
    { type: "VCPU", value: "1" },
    { type: "MEMORY", value: "1024" },
  ]);
  const cfgVar = jd.containerProperties.environment.find(
    (e: { name: string }) => e.name === "FUNCTION_CONFIG",
  );
  assert.equal(JSON.parse(Buffer.from(cfgVar.value, "base64").toString()).name, "scar-cowsay");
  assert.equal(jd.containerProperties.command, undefined, "the image's own command runs it in binary mode");
});

test("batch without subnets is refused before anything is made, naming the keys", async () => {
  const text = FDL().replace(
    "compute_resources: {subnets: [subnet-1], security_group_ids: [sg-1]}",
    "vcpus: 2",
  );
  await assert.rejects(
    init(text),
    /batch\.compute_resources\.subnets and batch\.compute_resources\.security_group_ids are empty/,
  );
  assert.equal(s.functions.size, 0);
  assert.equal(s.apis.size, 0);
  assert.ok(
    !calls.some((c) => c.command === "CreateFunction" || c.command === "CreateRestApi"),
    "nothing was made",
  );
});

test("rm removes what init made in SCAR's order and keeps buckets and objects", async () => {
  s.buckets.set("scar-in", {
    owner: ACCOUNT,
    objects: new Set(["input/", "input/a.txt"]),
    notifications: {
      LambdaFunctionConfigurations: [
        {
          Id: "other",
          LambdaFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:other",
          Events: ["s3:ObjectCreated:*"],
          Filter: { Key: { FilterRules: [{ Name: "prefix", Value: "other/" }] } },
        },
      ],
    },
  });
  await init();
  calls.length = 0;
  const { t, said } = target();
  assert.equal(await t.remove("scar-cowsay"), true);
  assert.deepEqual(names(calls), [
    "lambda.GetFunction",
    "apigateway.DeleteRestApi",
    "logs.DeleteLogGroup",
    "s3.GetBucketNotificationConfiguration",
    "s3.PutBucketNotificationConfiguration",
    "lambda.DeleteFunction",
    "ecr.DeleteRepository",
    "batch.DescribeComputeEnvironments",
    "batch.DescribeJobDefinitions",
    "batch.DeregisterJobDefinition",
    "batch.DescribeJobQueues",
    "batch.UpdateJobQueue",
    "batch.DescribeJobQueues",
    "batch.DeleteJobQueue",
    "batch.DescribeJobQueues",
    "batch.DescribeComputeEnvironments",
    "batch.UpdateComputeEnvironment",
    "batch.DescribeComputeEnvironments",
    "batch.DeleteComputeEnvironment",
  ]);
  assert.equal(calls.find((c) => c.command === "DeleteRepository")!.input.force, true);
  assert.equal(
    s.functions.size + s.logGroups.size + s.apis.size + s.repos.size + s.batch.ce.size + s.batch.queues.size,
    0,
  );
  // the other function's trigger, the bucket and its objects stay
  const b = s.buckets.get("scar-in")!;
  assert.deepEqual(
    b.notifications.LambdaFunctionConfigurations?.map((c) => c.Id),
    ["other"],
  );
  assert.deepEqual([...b.objects], ["input/", "input/a.txt"]);
  assert.ok(
    said.includes("Function 'scar-cowsay' successfully deleted.") === false,
    "the CLI says that line",
  );
  assert.ok(said.includes("Log group '/aws/lambda/scar-cowsay' successfully deleted."));
  assert.ok(
    !calls.some((c) => /DeleteBucket|DeleteObject/.test(c.command)),
    "never deletes buckets or objects",
  );
});

test("rm copes with parts already gone, and a second rm finds nothing", async () => {
  await init();
  s.apis.clear();
  s.logGroups.clear();
  s.repos.clear();
  s.batch.ce.clear();
  s.buckets.get("scar-in")!.notifications = {};
  const { t, said } = target();
  assert.equal(await t.remove("scar-cowsay"), true);
  assert.equal(s.functions.size, 0);
  assert.ok(said.includes("The requested log group '/aws/lambda/scar-cowsay' does not exist."));
  assert.ok(said.some((l) => /The requested API '.*' does not exist\./.test(l)));
  assert.equal(await t.remove("scar-cowsay"), false);
});

test("ecr.delete_image: false keeps the repository", async () => {
  await init(FDL("    ecr: {delete_image: false}"));
  await target().t.remove("scar-cowsay");
  assert.ok(s.repos.has("scar-cowsay"));
  assert.ok(!calls.some((c) => c.command === "DeleteRepository"));
});

test("a function of the same name that scar did not create is neither replaced nor removed", async () => {
  m.lambda.on(GetFunctionCommand).resolves({
    Configuration: {
      FunctionName: "scar-cowsay",
      FunctionArn: `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:scar-cowsay`,
    },
    Tags: { team: "payments" },
  });
  const { t } = target();
  const f = fdl(FDL());
  await assert.rejects(
    t.prepare(f.functions[0]!),
    /function 'scar-cowsay' exists in eu-west-1 but scar did not create it/,
  );
  await assert.rejects(t.remove("scar-cowsay"), /scar did not create it/);
  assert.deepEqual([...new Set(calls.map((c) => c.command))], ["GetFunction"], "only looked");
});

test("a missing or malformed role is an error naming the key; nothing is called", async () => {
  const noRole = fdl(FDL(), (c) => {
    c.aws.iam.role = "";
  });
  const { t } = target();
  await assert.rejects(t.prepare(noRole.functions[0]!), (e: Error & { hint?: string }) => {
    assert.equal(
      e.message,
      "function 'scar-cowsay' has no IAM role: set iam.role in the FDL or aws.iam.role in scar.cfg",
    );
    return true;
  });
  const bad = fdl(FDL("    iam: {role: 'arn:aws:iam::12345:user/bob'}"));
  await assert.rejects(
    t.prepare(bad.functions[0]!),
    /iam\.role 'arn:aws:iam::12345:user\/bob' is not an IAM role ARN/,
  );
  assert.equal(calls.length, 0);
});

test("an unknown region is refused: a malformed name at once, an unknown one at the first call", async () => {
  assert.throws(
    () => target({ region: "eu_west_1" }),
    /'eu_west_1' \(aws\.lambda\.region\) is not an AWS region/,
  );
  const moon = fdl(FDL().replace("      execution_mode", "      region: eu-moon-1\n      execution_mode"));
  m.lambda
    .on(GetFunctionCommand)
    .rejects(
      Object.assign(new Error("getaddrinfo ENOTFOUND lambda.eu-moon-1.amazonaws.com"), { code: "ENOTFOUND" }),
    );
  await assert.rejects(target().t.prepare(moon.functions[0]!), (e: Error & { hint?: string }) => {
    assert.match(e.message, /^looking for function 'scar-cowsay' failed: /);
    assert.match(e.hint ?? "", /no AWS endpoint answers for region 'eu-moon-1'/);
    return true;
  });
  assert.equal(s.functions.size, 0);
});

test("a bucket owned by another account is refused before anything is made", async () => {
  s.buckets.set("scar-in", { owner: "999999999999", objects: new Set(), notifications: {} });
  const f = fdl(FDL());
  const { t } = target();
  await assert.rejects(t.prepare(f.functions[0]!), /bucket 'scar-in' belongs to another AWS account/);
  await assert.rejects(
    t.deploy(f.functions[0]!, { storageProviders: f.storage_providers, update: false }),
    /belongs to another AWS account/,
  );
  assert.equal(s.functions.size + s.apis.size, 0);
  assert.ok(
    !calls.some((c) => c.command === "PutBucketNotificationConfiguration" || c.command === "CreateFunction"),
  );
});

test("AWS errors are one line with the service's message and a hint", async () => {
  m.lambda
    .on(GetFunctionCommand)
    .rejects(
      awsErr(
        "AccessDeniedException",
        "User: arn:aws:iam::123456789012:user/bob is not authorized to perform: lambda:GetFunction\non resource",
        403,
      ),
    );
  await assert.rejects(target().t.get("x"), (e: Error & { hint?: string }) => {
    assert.equal(e.message.includes("\n"), false);
    assert.match(
      e.message,
      /AccessDeniedException: User: .* is not authorized to perform: lambda:GetFunction on resource/,
    );
    assert.match(e.hint ?? "", /scar aws-policy/);
    return true;
  });
});
