/**
 * The answers of a small, stateful AWS behind the client mocks: functions, log groups, APIs, bucket
 * notification configurations and Batch resources exist once created and are gone once deleted, so
 * re-running init or rm, and resuming after a failure, meet what the first run left.
 */
import {
  CreateDeploymentCommand,
  CreateResourceCommand,
  CreateRestApiCommand,
  DeleteRestApiCommand,
  GetResourcesCommand,
  PutIntegrationCommand,
  PutMethodCommand,
} from "@aws-sdk/client-api-gateway";
import {
  CreateComputeEnvironmentCommand,
  CreateJobQueueCommand,
  DeleteComputeEnvironmentCommand,
  DeleteJobQueueCommand,
  DeregisterJobDefinitionCommand,
  DescribeComputeEnvironmentsCommand,
  DescribeJobDefinitionsCommand,
  DescribeJobQueuesCommand,
  RegisterJobDefinitionCommand,
  UpdateComputeEnvironmentCommand,
  UpdateJobQueueCommand,
} from "@aws-sdk/client-batch";
import {
  CreateLogGroupCommand,
  DeleteLogGroupCommand,
  FilterLogEventsCommand,
  PutRetentionPolicyCommand,
} from "@aws-sdk/client-cloudwatch-logs";
import { DeleteRepositoryCommand } from "@aws-sdk/client-ecr";
import { GetUserCommand } from "@aws-sdk/client-iam";
import {
  AddPermissionCommand,
  CreateFunctionCommand,
  DeleteFunctionCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  InvokeCommand,
  ListFunctionsCommand,
  ListTagsCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
} from "@aws-sdk/client-lambda";
import {
  CreateBucketCommand,
  GetBucketNotificationConfigurationCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  type NotificationConfiguration,
  PutBucketNotificationConfigurationCommand,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { ACCOUNT, awsErr, type Mocks } from "./fixtures.js";

export interface FakeState {
  functions: Map<
    string,
    {
      config: Record<string, unknown>;
      tags: Record<string, string>;
      imageUri: string;
      permissions: Set<string>;
    }
  >;
  logGroups: Set<string>;
  apis: Set<string>;
  buckets: Map<string, { owner: string; objects: Set<string>; notifications: NotificationConfiguration }>;
  batch: { ce: Map<string, string>; queues: Map<string, string>; defs: string[] };
  repos: Set<string>;
  /** Answers `Invoke` (the runtime's real response in the run tests). */
  invoke?: (input: Record<string, unknown>) => Record<string, unknown>;
  logEvents: { logStreamName: string; timestamp: number; message: string; eventId?: string }[];
}

export function newState(): FakeState {
  return {
    functions: new Map(),
    logGroups: new Set(),
    apis: new Set(),
    buckets: new Map(),
    batch: { ce: new Map(), queues: new Map(), defs: [] },
    repos: new Set(["scar-cowsay"]),
    logEvents: [],
  };
}

const updateInProgress = (f: { config: Record<string, unknown> }) =>
  awsErr(
    "ResourceConflictException",
    `The operation cannot be performed at this time. An update is in progress for resource: ${f.config.FunctionArn}`,
    409,
  );
const notFound = (what: string) => awsErr("ResourceNotFoundException", `${what} not found`, 404);

export function fakeAws(m: Mocks, s: FakeState): void {
  m.iam
    .on(GetUserCommand)
    .resolves({ User: { UserName: "alice", UserId: "AIDA", Arn: "", Path: "/", CreateDate: new Date() } });

  if (m.lambda) fakeLambda(m, s);

  // CloudWatch Logs
  m.logs.on(CreateLogGroupCommand).callsFake((i) => {
    if (s.logGroups.has(i.logGroupName))
      throw awsErr("ResourceAlreadyExistsException", "The specified log group already exists");
    s.logGroups.add(i.logGroupName);
    return {};
  });
  m.logs.on(PutRetentionPolicyCommand).resolves({});
  m.logs.on(DeleteLogGroupCommand).callsFake((i) => {
    if (!s.logGroups.delete(i.logGroupName)) throw notFound("The specified log group does not exist.");
    return {};
  });
  m.logs.on(FilterLogEventsCommand).callsFake((i) => {
    if (!s.logGroups.has(i.logGroupName)) throw notFound("The specified log group does not exist.");
    const all = s.logEvents.filter(
      (e) =>
        (!i.logStreamNames || i.logStreamNames.includes(e.logStreamName)) &&
        (i.startTime === undefined || e.timestamp >= i.startTime),
    );
    // two pages, to check that every page is read
    const start = i.nextToken ? Number(i.nextToken) : 0;
    const page = all.slice(start, start + 2);
    return { events: page, ...(start + 2 < all.length ? { nextToken: String(start + 2) } : {}) };
  });

  // API Gateway
  let apiSeq = 0;
  m.apigateway.on(CreateRestApiCommand).callsFake(() => {
    const id = `api${++apiSeq}xyz`;
    s.apis.add(id);
    return { id };
  });
  m.apigateway.on(GetResourcesCommand).resolves({ items: [{ id: "root1", path: "/" }] });
  m.apigateway.on(CreateResourceCommand).resolves({ id: "proxy1", path: "/{proxy+}", pathPart: "{proxy+}" });
  m.apigateway.on(PutMethodCommand).resolves({});
  m.apigateway.on(PutIntegrationCommand).resolves({});
  m.apigateway.on(CreateDeploymentCommand).resolves({ id: "dep1" });
  m.apigateway.on(DeleteRestApiCommand).callsFake((i) => {
    if (!s.apis.delete(i.restApiId))
      throw awsErr("NotFoundException", "Invalid API identifier specified", 404);
    return {};
  });

  if (m.s3) fakeS3(m, s);

  // Batch
  m.batch.on(DescribeComputeEnvironmentsCommand).callsFake((i) => {
    const st = s.batch.ce.get(i.computeEnvironments[0]);
    return {
      computeEnvironments: st
        ? [{ computeEnvironmentName: i.computeEnvironments[0], status: "VALID", state: st }]
        : [],
    };
  });
  m.batch.on(CreateComputeEnvironmentCommand).callsFake((i) => {
    s.batch.ce.set(i.computeEnvironmentName, "ENABLED");
    return { computeEnvironmentName: i.computeEnvironmentName };
  });
  m.batch.on(DescribeJobQueuesCommand).callsFake((i) => {
    const st = s.batch.queues.get(i.jobQueues[0]);
    return { jobQueues: st ? [{ jobQueueName: i.jobQueues[0], status: "VALID", state: st }] : [] };
  });
  m.batch.on(CreateJobQueueCommand).callsFake((i) => {
    s.batch.queues.set(i.jobQueueName, "ENABLED");
    return { jobQueueName: i.jobQueueName };
  });
  m.batch.on(RegisterJobDefinitionCommand).callsFake((i) => {
    const arn = `arn:aws:batch:eu-west-1:${ACCOUNT}:job-definition/${i.jobDefinitionName}:${s.batch.defs.length + 1}`;
    s.batch.defs.push(arn);
    return { jobDefinitionArn: arn };
  });
  m.batch
    .on(DescribeJobDefinitionsCommand)
    .callsFake(() => ({ jobDefinitions: s.batch.defs.map((a) => ({ jobDefinitionArn: a })) }));
  m.batch.on(DeregisterJobDefinitionCommand).callsFake((i) => {
    s.batch.defs = s.batch.defs.filter((a) => a !== i.jobDefinition);
    return {};
  });
  m.batch.on(UpdateJobQueueCommand).callsFake((i) => {
    s.batch.queues.set(i.jobQueue, i.state);
    return {};
  });
  m.batch.on(DeleteJobQueueCommand).callsFake((i) => {
    s.batch.queues.delete(i.jobQueue);
    return {};
  });
  m.batch.on(UpdateComputeEnvironmentCommand).callsFake((i) => {
    s.batch.ce.set(i.computeEnvironment, i.state);
    return {};
  });
  m.batch.on(DeleteComputeEnvironmentCommand).callsFake((i) => {
    s.batch.ce.delete(i.computeEnvironment);
    return {};
  });

  // ECR
  m.ecr.on(DeleteRepositoryCommand).callsFake((i) => {
    if (!s.repos.delete(i.repositoryName))
      throw awsErr("RepositoryNotFoundException", "repository does not exist", 400);
    return {};
  });
}

function fakeLambda(m: Mocks, s: FakeState): void {
  m.lambda.on(GetFunctionCommand).callsFake((i) => {
    const f = s.functions.get(i.FunctionName);
    if (!f) throw notFound(`Function ${i.FunctionName}`);
    return { Configuration: f.config, Tags: f.tags, Code: { ImageUri: f.imageUri, RepositoryType: "ECR" } };
  });
  m.lambda.on(CreateFunctionCommand).callsFake((i) => {
    if (s.functions.has(i.FunctionName))
      throw awsErr("ResourceConflictException", `Function already exist: ${i.FunctionName}`, 409);
    const config = {
      FunctionName: i.FunctionName,
      FunctionArn: `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:${i.FunctionName}`,
      MemorySize: i.MemorySize,
      Timeout: i.Timeout,
      Role: i.Role,
      Description: i.Description,
      Environment: { Variables: i.Environment?.Variables ?? {} },
      PackageType: "Image",
      State: "Pending",
    };
    s.functions.set(i.FunctionName, {
      config,
      tags: i.Tags ?? {},
      imageUri: i.Code.ImageUri,
      permissions: new Set(),
    });
    return config;
  });
  m.lambda.on(GetFunctionConfigurationCommand).callsFake((i) => {
    const f = s.functions.get(i.FunctionName);
    if (!f) throw notFound(`Function ${i.FunctionName}`);
    // Pending on the first look, Active on the next (as Lambda does while it caches the image)
    const state = f.config.State;
    const update = f.config.LastUpdateStatus ?? "Successful";
    f.config.State = "Active";
    // an update is InProgress on the first look after it, Successful on the next
    f.config.LastUpdateStatus = "Successful";
    return { ...f.config, State: state, LastUpdateStatus: update };
  });
  m.lambda.on(UpdateFunctionCodeCommand).callsFake((i) => {
    const f = s.functions.get(i.FunctionName);
    if (!f) throw notFound(`Function ${i.FunctionName}`);
    if (f.config.LastUpdateStatus === "InProgress") throw updateInProgress(f);
    f.imageUri = i.ImageUri;
    f.config.LastUpdateStatus = "InProgress";
    return f.config;
  });
  m.lambda.on(UpdateFunctionConfigurationCommand).callsFake((i) => {
    const f = s.functions.get(i.FunctionName);
    if (!f) throw notFound(`Function ${i.FunctionName}`);
    if (f.config.LastUpdateStatus === "InProgress") throw updateInProgress(f);
    for (const k of ["Role", "MemorySize", "Timeout", "Description", "Environment", "EphemeralStorage"])
      if (i[k] !== undefined) f.config[k] = i[k];
    f.config.LastUpdateStatus = "InProgress";
    return f.config;
  });
  m.lambda.on(AddPermissionCommand).callsFake((i) => {
    const f = s.functions.get(i.FunctionName);
    if (!f) throw notFound(`Function ${i.FunctionName}`);
    if (f.permissions.has(i.StatementId))
      throw awsErr(
        "ResourceConflictException",
        `The statement id (${i.StatementId}) provided already exists. Please provide a new statement id, or remove the existing statement.`,
        409,
      );
    f.permissions.add(i.StatementId);
    return { Statement: "{}" };
  });
  m.lambda.on(DeleteFunctionCommand).callsFake((i) => {
    if (!s.functions.delete(i.FunctionName)) throw notFound(`Function ${i.FunctionName}`);
    return {};
  });
  m.lambda
    .on(ListFunctionsCommand)
    .callsFake(() => ({ Functions: [...s.functions.values()].map((f) => f.config) }));
  m.lambda.on(ListTagsCommand).callsFake((i) => {
    const f = [...s.functions.values()].find((x) => x.config.FunctionArn === i.Resource);
    return { Tags: f?.tags ?? {} };
  });
  m.lambda.on(InvokeCommand).callsFake((i) => {
    if (!s.functions.has(i.FunctionName)) throw notFound(`Function ${i.FunctionName}`);
    if (!s.invoke) throw new Error("no invoke answer set");
    return s.invoke(i);
  });
}

/** S3 with buckets of owners, objects, and the notification check S3 makes (it may invoke the function). */
function fakeS3(m: Mocks, s: FakeState): void {
  const bucketOf = (name: string, expected?: string) => {
    const b = s.buckets.get(name);
    if (!b) throw Object.assign(awsErr("NoSuchBucket", "The specified bucket does not exist", 404));
    if (expected && b.owner !== expected) throw awsErr("AccessDenied", "Access Denied", 403);
    return b;
  };
  m.s3.on(HeadBucketCommand).callsFake((i) => {
    const b = s.buckets.get(i.Bucket);
    if (!b) throw awsErr("NotFound", "", 404);
    if (i.ExpectedBucketOwner && b.owner !== i.ExpectedBucketOwner) throw awsErr("Forbidden", "", 403);
    return {};
  });
  m.s3.on(CreateBucketCommand).callsFake((i) => {
    if (s.buckets.has(i.Bucket)) throw awsErr("BucketAlreadyOwnedByYou", "yours", 409);
    s.buckets.set(i.Bucket, { owner: ACCOUNT, objects: new Set(), notifications: {} });
    return {};
  });
  m.s3.on(HeadObjectCommand).callsFake((i) => {
    if (!bucketOf(i.Bucket).objects.has(i.Key)) throw awsErr("NotFound", "", 404);
    return {};
  });
  m.s3.on(PutObjectCommand).callsFake((i) => {
    bucketOf(i.Bucket).objects.add(i.Key);
    return {};
  });
  m.s3
    .on(GetBucketNotificationConfigurationCommand)
    .callsFake((i) => structuredClone(bucketOf(i.Bucket, i.ExpectedBucketOwner).notifications));
  m.s3.on(PutBucketNotificationConfigurationCommand).callsFake((i) => {
    const b = bucketOf(i.Bucket, i.ExpectedBucketOwner);
    for (const c of i.NotificationConfiguration.LambdaFunctionConfigurations ?? []) {
      const name = String(c.LambdaFunctionArn).split(":").pop()!;
      const f = s.functions.get(name);
      // S3 checks that it may invoke the destination, as AWS does
      if (f && ![...f.permissions].some((p) => p.startsWith("scar-s3-")))
        throw awsErr("InvalidArgument", "Unable to validate the following destination configurations", 400);
    }
    b.notifications = structuredClone(i.NotificationConfiguration);
    return {};
  });
}
