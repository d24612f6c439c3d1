/**
 * Throttling and conflicts through the SDK's real retry layer (which aws-sdk-client-mock bypasses):
 * the real LambdaClient of createClients() talks to a Lambda at AWS_ENDPOINT_URL_LAMBDA that answers
 * 429 TooManyRequestsException or 409 ResourceConflictException ("an update is in progress") before
 * its real answer. The other services are mocked.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, test } from "node:test";
import { TargetError } from "../../../src/targets/target-error.js";
import { fakeAws, newState } from "./fake-aws.js";
import { fakePublisher, fdl, mockAws, target } from "./fixtures.js";
import { LambdaHttp } from "./lambda-http.js";

let lambda: LambdaHttp;
let mocked: ReturnType<typeof mockAws>;
const saved = { ...process.env };

before(async () => {
  lambda = await LambdaHttp.start("eu-west-1");
  // the SDK's own endpoint variable and the default credential chain: nothing passed to the clients
  process.env.AWS_ENDPOINT_URL_LAMBDA = lambda.url;
  process.env.AWS_ACCESS_KEY_ID = "AKIDSCARTEST";
  process.env.AWS_SECRET_ACCESS_KEY = "scar-test-secret";
  process.env.AWS_EC2_METADATA_DISABLED = "true";
});
after(async () => {
  process.env = saved;
  await lambda.close();
});
beforeEach(() => {
  lambda.functions.clear();
  lambda.calls.length = 0;
  lambda.clearFaults();
  mocked = mockAws(["iam", "logs", "apigateway", "batch", "s3", "ecr"]);
  fakeAws(mocked.mocks, newState());
});
afterEach(() => mocked.restore());

const THROTTLED = { status: 429, type: "TooManyRequestsException", message: "Rate exceeded" };
const UPDATING = {
  status: 409,
  type: "ResourceConflictException",
  message:
    "The operation cannot be performed at this time. An update is in progress for resource: arn:aws:lambda:eu-west-1:123456789012:function:scar-cowsay",
};
/** Retries of scar's own (AddPermission on a conflict) without real sleeps; the SDK's are real. */
const PACE = { sleep: async () => {}, limitMs: 50, intervalMs: 10 };

const spec = () =>
  fdl(`
functions:
  aws:
  - lambda:
      name: scar-cowsay
      init_script: cow.sh
      container: {image: grycap/cowsay}
      input: [{storage_provider: s3, path: in-bkt/input}]
`);

const count = (op: string) => lambda.calls.filter((c) => c === op).length;

test("init goes through throttled calls and a function update in progress, after retries", async () => {
  lambda.fail("GetFunction", 1, THROTTLED);
  lambda.fail("CreateFunction", 2, THROTTLED);
  lambda.fail("AddPermission", 3, UPDATING);
  const f = spec();
  const { t } = target({ pace: PACE, env: process.env });
  await t.deploy(f.functions[0]!, { storageProviders: f.storage_providers, update: false });
  await t.close();
  assert.equal(count("GetFunction"), 2);
  assert.equal(count("CreateFunction"), 3, "the SDK sent it again after each 429");
  assert.equal(count("AddPermission"), 4, "scar sent it again after each conflict");
  const fn = lambda.functions.get("scar-cowsay")!;
  assert.deepEqual([...fn.statements], ["scar-s3-in-bkt"]);
  assert.equal(fn.config.State, "Active");
});

test("throttled past the last attempt: one line with a hint, and the ECR repository made is removed", async () => {
  lambda.fail("CreateFunction", 50, THROTTLED);
  const f = spec();
  const { t } = target({ pace: PACE, env: { ...process.env, AWS_MAX_ATTEMPTS: "3" } });
  const err = await t.deploy(f.functions[0]!, { storageProviders: f.storage_providers, update: false }).then(
    () => assert.fail("init went through"),
    (e: unknown) => e,
  );
  await t.close();
  assert.ok(err instanceof TargetError);
  assert.equal(
    err.message,
    "creating function 'scar-cowsay' failed: TooManyRequestsException: Rate exceeded",
  );
  assert.doesNotMatch(err.message, /\n/);
  assert.match(err.hint ?? "", /throttling the requests after every retry/);
  assert.equal(count("CreateFunction"), 3, "AWS_MAX_ATTEMPTS=3 attempts");
  assert.equal(lambda.functions.size, 0);
  assert.ok(
    mocked.mocks.ecr.commandCalls((await import("@aws-sdk/client-ecr")).DeleteRepositoryCommand as never)
      .length === 1,
    "the repository this init made is removed again",
  );
});

test("a function that stays busy: init ends with Lambda's message and a hint, and removes the function", async () => {
  lambda.fail("AddPermission", 50, UPDATING);
  const f = spec();
  const { t } = target({ pace: PACE, env: process.env });
  const err = await t.deploy(f.functions[0]!, { storageProviders: f.storage_providers, update: false }).then(
    () => assert.fail("init went through"),
    (e: unknown) => e,
  );
  await t.close();
  assert.ok(err instanceof TargetError);
  assert.match(
    err.message,
    /^preparing input bucket 'in-bkt' failed: ResourceConflictException: The operation cannot be performed at this time\. An update is in progress for resource: arn:aws:lambda:\S+$/,
  );
  assert.match(err.hint ?? "", /being changed by another operation/);
  assert.equal(count("AddPermission"), 5, "limitMs / intervalMs attempts");
  assert.equal(count("DeleteFunction"), 1);
  assert.equal(lambda.functions.size, 0);
});

test("update waits while Lambda applies the new code, and goes through a conflict of its own", async () => {
  const f = spec();
  await target({ pace: PACE, env: process.env }).t.deploy(f.functions[0]!, {
    storageProviders: f.storage_providers,
    update: false,
  });
  const NEW_URI = `123456789012.dkr.ecr.eu-west-1.amazonaws.com/scar-cowsay@sha256:${"b".repeat(64)}`;
  lambda.calls.length = 0;
  lambda.updateLooks = 3;
  // another change of the function (someone else's) still InProgress when scar changes its configuration
  lambda.fail("UpdateFunctionConfiguration", 2, UPDATING);
  const g = fdl(
    `
functions:
  aws:
  - lambda:
      name: scar-cowsay
      init_script: cow.sh
      memory: 1024
      container: {image: grycap/cowsay}
      input: [{storage_provider: s3, path: in-bkt/input}]
`,
  );
  const { t } = target({ pace: PACE, env: process.env, publisher: async () => fakePublisher(NEW_URI) });
  const info = await t.deploy(g.functions[0]!, { storageProviders: g.storage_providers, update: true });
  await t.close();
  assert.deepEqual(lambda.calls.slice(lambda.calls.indexOf("UpdateFunctionCode")), [
    "UpdateFunctionCode",
    "GetFunctionConfiguration", // InProgress
    "GetFunctionConfiguration",
    "GetFunctionConfiguration",
    "GetFunctionConfiguration", // Successful
    "UpdateFunctionConfiguration", // conflict
    "UpdateFunctionConfiguration", // conflict
    "UpdateFunctionConfiguration",
    "GetFunctionConfiguration",
    "GetFunctionConfiguration",
    "GetFunctionConfiguration",
    "GetFunctionConfiguration",
  ]);
  const fn = lambda.functions.get("scar-cowsay")!;
  assert.equal(fn.imageUri, NEW_URI);
  assert.equal(fn.config.MemorySize, 1024);
  assert.equal(fn.config.LastUpdateStatus, "Successful");
  assert.equal(info.memory, 1024);
});
