/** `scar init --target aws`: the whole call sequence, each call's input, merging triggers, undoing a failure. */
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import { PutBucketNotificationConfigurationCommand } from "@aws-sdk/client-s3";
import { FUNCTION_NAME, MEMORY, ROLE_ARN, TIMEOUT } from "../../../src/targets/aws/checks.js";
import { type FakeState, fakeAws, newState } from "./fake-aws.js";
import {
  ACCOUNT,
  awsErr,
  type Call,
  fdl,
  IMAGE_URI,
  type Mocks,
  mockAws,
  names,
  ROLE,
  target,
} from "./fixtures.js";

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

const FDL = `
functions:
  aws:
  - lambda:
      name: scar-cowsay
      memory: 1024
      timeout: 120
      description: says moo
      init_script: cow.sh
      architectures: [arm64]
      vpc: {SubnetIds: [subnet-1], SecurityGroupIds: [sg-1]}
      environment: {Variables: {MY_VAR: hello}}
      container:
        image: grycap/cowsay
      input:
      - storage_provider: s3
        path: scar-in/input
      output:
      - storage_provider: s3
        path: scar-out/output
    api_gateway:
      name: cowsay-api
    cloudwatch:
      log_retention_policy_in_days: 14
`;

const spec = () => fdl(FDL).functions[0]!;
const deploy = (t: ReturnType<typeof target>["t"], f = fdl(FDL)) =>
  t.deploy(f.functions[0]!, { storageProviders: f.storage_providers, update: false });

/** Every call's input against the API reference's rules. */
function checkInputs(list: Call[]) {
  for (const c of list) {
    const i = c.input;
    if (c.service === "lambda" && "FunctionName" in i)
      assert.match(String(i.FunctionName), FUNCTION_NAME, `${c.command}.FunctionName`);
    if (c.command === "CreateFunction") {
      assert.match(String(i.Role), ROLE_ARN);
      assert.ok(Number(i.MemorySize) >= MEMORY.min && Number(i.MemorySize) <= MEMORY.max);
      assert.ok(Number(i.Timeout) >= TIMEOUT.min && Number(i.Timeout) <= TIMEOUT.max);
      assert.ok(String(i.Description).length <= 256);
    }
    if (c.command === "AddPermission") {
      assert.match(String(i.StatementId), /^[a-zA-Z0-9_.-]{1,100}$/);
      assert.equal(i.Action, "lambda:InvokeFunction");
      assert.match(
        String(i.SourceArn),
        /^arn:aws:(s3:::[a-z0-9.-]{3,63}|execute-api:[a-z0-9-]+:\d{12}:[a-z0-9]+\/\*)$/,
      );
    }
    if (
      c.command === "PutBucketNotificationConfiguration" ||
      c.command === "GetBucketNotificationConfiguration"
    )
      assert.equal(i.ExpectedBucketOwner, ACCOUNT, "scar changes only its own account's buckets");
    if (c.command === "CreateLogGroup") assert.match(String(i.logGroupName), /^[\w\-/.#]{1,512}$/);
  }
}

test("init makes, in SCAR's order, the image, API, function, log group, trigger, buckets and route", async () => {
  s.buckets.set("scar-in", {
    owner: ACCOUNT,
    objects: new Set(),
    notifications: {
      TopicConfigurations: [
        { Id: "backup", TopicArn: "arn:aws:sns:eu-west-1:123456789012:t", Events: ["s3:ObjectRemoved:*"] },
      ],
      LambdaFunctionConfigurations: [
        {
          Id: "other-tool",
          LambdaFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:thumbnails",
          Events: ["s3:ObjectCreated:*"],
          Filter: { Key: { FilterRules: [{ Name: "prefix", Value: "images/" }] } },
        },
      ],
    },
  });
  const { t, said, publisher } = target();
  const info = await deploy(t);
  assert.deepEqual(publisher.published, ["scar-cowsay@eu-west-1"]);
  assert.deepEqual(names(calls), [
    "lambda.GetFunction", // not taken
    "s3.HeadBucket", // the input bucket is the account's
    "s3.HeadBucket", // the output bucket: missing, will be made
    "apigateway.CreateRestApi",
    "iam.GetUser",
    "lambda.CreateFunction",
    "lambda.GetFunctionConfiguration", // Pending
    "lambda.GetFunctionConfiguration", // Active
    "logs.CreateLogGroup",
    "logs.PutRetentionPolicy",
    "s3.HeadBucket",
    "s3.HeadObject",
    "s3.PutObject", // input/ folder marker
    "lambda.AddPermission",
    "s3.GetBucketNotificationConfiguration",
    "s3.PutBucketNotificationConfiguration",
    "s3.HeadBucket",
    "s3.CreateBucket",
    "s3.HeadObject",
    "s3.PutObject", // output/ folder marker
    "lambda.AddPermission",
    "apigateway.GetResources",
    "apigateway.CreateResource",
    "apigateway.PutMethod",
    "apigateway.PutIntegration",
    "apigateway.CreateDeployment",
  ]);
  checkInputs(calls);

  const create = calls.find((c) => c.command === "CreateFunction")!.input as Loose;
  assert.equal(create.PackageType, "Image");
  assert.deepEqual(create.Code, { ImageUri: IMAGE_URI });
  assert.equal(create.Role, ROLE);
  assert.equal(create.MemorySize, 1024);
  assert.equal(create.Timeout, 120);
  assert.equal(create.Description, "says moo");
  assert.deepEqual(create.Architectures, ["arm64"]);
  assert.deepEqual(create.VpcConfig, { SubnetIds: ["subnet-1"], SecurityGroupIds: ["sg-1"] });
  assert.deepEqual(create.Tags, { createdby: "scar", owner: "alice" });
  const vars = create.Environment.Variables;
  assert.equal(vars.MY_VAR, "hello");
  assert.equal(vars.IMAGE_ID, "grycap/cowsay");
  assert.equal(vars.API_GATEWAY_ID, "api1xyz");
  const stored = JSON.parse(Buffer.from(vars.FDL, "base64").toString());
  assert.equal(stored.name, "scar-cowsay");
  assert.equal(
    stored.init_script,
    "cow.sh",
    "the script as a file name next to the config, as SCAR ships it",
  );
  assert.deepEqual(stored.input, [{ storage_provider: "s3", path: "scar-in/input" }]);
  assert.deepEqual(stored.ecr, { delete_image: true });

  const retention = calls.find((c) => c.command === "PutRetentionPolicy")!.input;
  assert.deepEqual(retention, { logGroupName: "/aws/lambda/scar-cowsay", retentionInDays: 14 });

  const [s3perm, apiperm] = calls.filter((c) => c.command === "AddPermission").map((c) => c.input);
  assert.deepEqual(s3perm, {
    FunctionName: "scar-cowsay",
    StatementId: "scar-s3-scar-in",
    Action: "lambda:InvokeFunction",
    Principal: "s3.amazonaws.com",
    SourceArn: "arn:aws:s3:::scar-in",
    SourceAccount: ACCOUNT,
  });
  assert.equal(apiperm!.Principal, "apigateway.amazonaws.com");
  assert.equal(apiperm!.SourceArn, `arn:aws:execute-api:eu-west-1:${ACCOUNT}:api1xyz/*`);

  // merged: the other tool's topic and trigger are still there, and scar's entry is added
  const n = s.buckets.get("scar-in")!.notifications;
  assert.equal(n.TopicConfigurations?.[0]?.Id, "backup");
  assert.deepEqual(
    n.LambdaFunctionConfigurations?.map((c) => [
      c.LambdaFunctionArn?.split(":").pop(),
      c.Filter?.Key?.FilterRules?.[0]?.Value,
    ]),
    [
      ["thumbnails", "images/"],
      ["scar-cowsay", "input/"],
    ],
  );
  assert.deepEqual(n.LambdaFunctionConfigurations?.[1]?.Events, ["s3:ObjectCreated:*"]);
  assert.ok(s.buckets.get("scar-out")!.objects.has("output/"));

  const integration = calls.find((c) => c.command === "PutIntegration")!.input;
  assert.equal(integration.type, "AWS_PROXY");
  assert.equal(integration.httpMethod, "ANY");
  assert.equal(integration.integrationHttpMethod, "POST");
  assert.equal(
    integration.uri,
    `arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:${ACCOUNT}:function:scar-cowsay/invocations`,
  );
  assert.equal(calls.find((c) => c.command === "CreateResource")!.input.pathPart, "{proxy+}");
  assert.equal(calls.find((c) => c.command === "CreateDeployment")!.input.stageName, "scar");

  assert.equal(info.apiUrl, "https://api1xyz.execute-api.eu-west-1.amazonaws.com/scar/launch");
  assert.ok(said.includes("Log group '/aws/lambda/scar-cowsay' successfully created."));
  assert.ok(said.includes("Folder 'output/' created in bucket 'scar-out'."));
});

test("a failure in the middle undoes what this init made, and a second init then completes", async () => {
  s.buckets.set("scar-in", { owner: ACCOUNT, objects: new Set(["input/"]), notifications: {} });
  m.s3
    .on(PutBucketNotificationConfigurationCommand)
    .rejectsOnce(awsErr("ServiceUnavailable", "Please reduce your request rate.", 503));
  const { t } = target();
  await assert.rejects(deploy(t), (e: Error) => {
    assert.equal(
      e.message,
      "adding the trigger of bucket 'scar-in' failed: ServiceUnavailable: Please reduce your request rate.",
    );
    assert.ok(!e.stack?.includes("\n    at ") || e.name === "TargetError");
    return true;
  });
  assert.equal(s.functions.size, 0, "the function is deleted again");
  assert.equal(s.logGroups.size, 0, "the log group is deleted again");
  assert.equal(s.apis.size, 0, "the API is deleted again");
  assert.equal(s.repos.size, 0, "the function image's repository is deleted again");
  assert.deepEqual(s.buckets.get("scar-in")!.notifications, {}, "the bucket's notifications are as before");
  const undone = names(calls).slice(names(calls).lastIndexOf("s3.PutBucketNotificationConfiguration") + 1);
  assert.deepEqual(undone, [
    "s3.GetBucketNotificationConfiguration", // the trigger: was it written after all? (no)
    "logs.DeleteLogGroup",
    "lambda.DeleteFunction",
    "apigateway.DeleteRestApi",
    "ecr.DeleteRepository",
  ]);

  // The same command again (S3 answers again): now everything is made.
  fakeAws(m, s);
  s.repos.add("scar-cowsay");
  await deploy(target().t);
  assert.equal(s.functions.size, 1);
  assert.equal(s.buckets.get("scar-in")!.notifications.LambdaFunctionConfigurations?.length, 1);
});

test("init run again after rm gives the same trigger once, never doubled", async () => {
  const { t } = target();
  await deploy(t);
  await t.remove("scar-cowsay");
  assert.equal(s.buckets.get("scar-in")!.notifications.LambdaFunctionConfigurations, undefined);
  s.repos.add("scar-cowsay");
  await deploy(target().t);
  assert.equal(s.buckets.get("scar-in")!.notifications.LambdaFunctionConfigurations?.length, 1);
});

test("a trigger left from an earlier init of the same function is replaced, not doubled", async () => {
  const arn = `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:scar-cowsay`;
  s.buckets.set("scar-in", {
    owner: ACCOUNT,
    objects: new Set(["input/"]),
    notifications: {
      LambdaFunctionConfigurations: [
        {
          Id: "old",
          LambdaFunctionArn: arn,
          Events: ["s3:ObjectCreated:*"],
          Filter: { Key: { FilterRules: [{ Name: "prefix", Value: "input/" }] } },
        },
      ],
    },
  });
  await deploy(target().t);
  const list = s.buckets.get("scar-in")!.notifications.LambdaFunctionConfigurations!;
  assert.equal(list.length, 1);
  assert.equal(list[0]!.Id, "scar-scar-cowsay-input");
});

test("a new role that Lambda cannot assume yet is retried, then init goes on", async () => {
  const { CreateFunctionCommand } = await import("@aws-sdk/client-lambda");
  let n = 0;
  const base = s;
  m.lambda.on(CreateFunctionCommand).callsFake((i) => {
    n++;
    if (n < 3)
      throw awsErr(
        "InvalidParameterValueException",
        "The role defined for the function cannot be assumed by Lambda.",
      );
    base.functions.set(i.FunctionName, {
      config: {
        FunctionName: i.FunctionName,
        FunctionArn: `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:${i.FunctionName}`,
        State: "Active",
      },
      tags: i.Tags,
      imageUri: i.Code.ImageUri,
      permissions: new Set(),
    });
    return { FunctionArn: `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:${i.FunctionName}` };
  });
  const { t } = target({ pace: { sleep: async () => {}, limitMs: 100, intervalMs: 10 } });
  await deploy(t);
  assert.equal(n, 3);
});

test("a role that never becomes assumable ends in one line with a hint, and nothing is left", async () => {
  const { CreateFunctionCommand } = await import("@aws-sdk/client-lambda");
  m.lambda
    .on(CreateFunctionCommand)
    .rejects(
      awsErr(
        "InvalidParameterValueException",
        "The role defined for the function cannot be assumed by Lambda.",
      ),
    );
  const { t } = target();
  await assert.rejects(deploy(t), (e: Error & { hint?: string }) => {
    assert.equal(
      e.message,
      "creating function 'scar-cowsay' failed: InvalidParameterValueException: The role defined for the function cannot be assumed by Lambda.",
    );
    assert.match(e.hint ?? "", /trust lambda\.amazonaws\.com/);
    return true;
  });
  assert.equal(s.apis.size, 0);
  assert.equal(s.repos.size, 0);
});

test("the minimal spec passes the checks of the API reference", () => {
  assert.equal(spec().memory, 1024);
});
