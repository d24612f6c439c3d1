/**
 * AWS Batch for `batch` and `lambda-batch` (reference/scar-behaviour.md §8): a compute environment,
 * a job queue and a job definition, all named after the function, as the function's runtime
 * (src/lambda/batch.ts) submits to them. The job runs the function image in binary mode: without
 * AWS_LAMBDA_RUNTIME_API the image's bootstrap reads one event from $EVENT and the config from
 * $FUNCTION_CONFIG.
 */
import {
  type BatchClient,
  CreateComputeEnvironmentCommand,
  type CreateComputeEnvironmentCommandInput,
  CreateJobQueueCommand,
  DeleteComputeEnvironmentCommand,
  DeleteJobQueueCommand,
  DeregisterJobDefinitionCommand,
  DescribeComputeEnvironmentsCommand,
  DescribeJobDefinitionsCommand,
  DescribeJobQueuesCommand,
  RegisterJobDefinitionCommand,
  type RegisterJobDefinitionCommandInput,
  UpdateComputeEnvironmentCommand,
  UpdateJobQueueCommand,
} from "@aws-sdk/client-batch";
import type { FunctionSpec } from "../../fdl/spec.js";
import { TargetError } from "../target-error.js";
import { type Pace, waitFor } from "./wait.js";

interface BatchSection {
  vcpus?: number;
  memory?: number;
  enable_gpu?: boolean;
  state?: string;
  type?: string;
  service_role?: string;
  environment?: { Variables?: Record<string, unknown> };
  compute_resources?: {
    type?: string;
    min_v_cpus?: number;
    desired_v_cpus?: number;
    max_v_cpus?: number;
    subnets?: string[];
    security_group_ids?: string[];
    instance_types?: string[];
    instance_role?: string;
    launch_template_name?: string;
  };
}

/** SCAR's default launch template installs its Python supervisor on the host; scar's image carries its own. */
const SCAR_LAUNCH_TEMPLATE = "faas-supervisor";

function fill(text: string, account: string): string {
  return text.replaceAll("{account_id}", account);
}

/** The three creation requests, checked before anything is made. */
export function batchPlan(
  spec: FunctionSpec,
  o: { imageUri: string; account: string; functionConfig: Record<string, unknown> },
): { ce: CreateComputeEnvironmentCommandInput; jobDefinition: RegisterJobDefinitionCommandInput } {
  const b = (spec.raw.batch ?? {}) as BatchSection;
  const cr = b.compute_resources ?? {};
  const missing = [
    ...(cr.subnets?.length ? [] : ["batch.compute_resources.subnets"]),
    ...(cr.security_group_ids?.length ? [] : ["batch.compute_resources.security_group_ids"]),
  ];
  if (missing.length > 0)
    throw new TargetError(
      `function '${spec.name}' runs on AWS Batch (execution_mode ${spec.execution_mode}) but ${missing.join(" and ")} ${missing.length === 1 ? "is" : "are"} empty`,
      "set them in the FDL or under aws.batch.compute_resources in scar.cfg (the VPC subnets and security groups the jobs' instances start in)",
    );
  const type = (cr.type ?? "EC2") as "EC2" | "SPOT" | "FARGATE" | "FARGATE_SPOT";
  const fargate = type.startsWith("FARGATE");
  const vcpus = spec.batch?.vcpus ?? b.vcpus ?? 1;
  const memory = spec.batch?.memory ?? b.memory ?? 1024;
  const gpu = spec.batch?.enable_gpu ?? b.enable_gpu ?? false;
  const ce: CreateComputeEnvironmentCommandInput = {
    computeEnvironmentName: spec.name,
    type: (b.type ?? "MANAGED") as "MANAGED",
    state: (b.state ?? "ENABLED") as "ENABLED",
    ...(b.service_role ? { serviceRole: fill(b.service_role, o.account) } : {}),
    computeResources: {
      type,
      maxvCpus: cr.max_v_cpus ?? 2,
      subnets: cr.subnets!,
      securityGroupIds: cr.security_group_ids!,
      ...(fargate
        ? {}
        : {
            minvCpus: cr.min_v_cpus ?? 0,
            desiredvCpus: cr.desired_v_cpus ?? 0,
            instanceTypes: cr.instance_types?.length ? cr.instance_types : ["optimal"],
            ...(cr.instance_role ? { instanceRole: fill(cr.instance_role, o.account) } : {}),
            ...(cr.launch_template_name && cr.launch_template_name !== SCAR_LAUNCH_TEMPLATE
              ? { launchTemplate: { launchTemplateName: cr.launch_template_name } }
              : {}),
          }),
    },
    tags: { createdby: "scar" },
  };
  const env = Object.entries(b.environment?.Variables ?? {}).map(([name, value]) => ({
    name,
    value: String(value),
  }));
  env.push({
    name: "FUNCTION_CONFIG",
    value: Buffer.from(JSON.stringify(o.functionConfig)).toString("base64"),
  });
  const jobDefinition: RegisterJobDefinitionCommandInput = {
    jobDefinitionName: spec.name,
    type: "container",
    ...(fargate ? { platformCapabilities: ["FARGATE"] } : {}),
    containerProperties: {
      image: o.imageUri,
      resourceRequirements: [
        { type: "VCPU", value: String(vcpus) },
        { type: "MEMORY", value: String(memory) },
        ...(gpu ? [{ type: "GPU" as const, value: "1" }] : []),
      ],
      environment: env,
    },
    tags: { createdby: "scar" },
  };
  return { ce, jobDefinition };
}

async function ceStatus(batch: BatchClient, name: string) {
  const r = await batch.send(new DescribeComputeEnvironmentsCommand({ computeEnvironments: [name] }));
  return r.computeEnvironments?.[0];
}

async function queueStatus(batch: BatchClient, name: string) {
  const r = await batch.send(new DescribeJobQueuesCommand({ jobQueues: [name] }));
  return r.jobQueues?.[0];
}

function settled<T extends { status?: string; statusReason?: string }>(
  what: string,
  x: T | undefined,
): T | undefined {
  if (!x) return undefined;
  if (x.status === "INVALID")
    throw new TargetError(`${what} is INVALID: ${x.statusReason ?? "no reason given"}`);
  return x.status === "VALID" ? x : undefined;
}

/** Creates what is missing of the three (a re-run completes a half-made set). */
export async function ensureBatch(
  batch: BatchClient,
  plan: ReturnType<typeof batchPlan>,
  pace: Pace,
): Promise<{ created: string[] }> {
  const name = plan.ce.computeEnvironmentName!;
  const created: string[] = [];
  if (!(await ceStatus(batch, name))) {
    await batch.send(new CreateComputeEnvironmentCommand(plan.ce));
    created.push("compute environment");
  }
  await waitFor(pace, `compute environment '${name}' to become VALID`, async () =>
    settled(`compute environment '${name}'`, await ceStatus(batch, name)),
  );
  if (!(await queueStatus(batch, name))) {
    await batch.send(
      new CreateJobQueueCommand({
        jobQueueName: name,
        state: "ENABLED",
        priority: 1,
        computeEnvironmentOrder: [{ order: 1, computeEnvironment: name }],
        tags: { createdby: "scar" },
      }),
    );
    created.push("job queue");
  }
  await waitFor(pace, `job queue '${name}' to become VALID`, async () =>
    settled(`job queue '${name}'`, await queueStatus(batch, name)),
  );
  // A new revision each time: Batch keeps definitions immutable.
  await batch.send(new RegisterJobDefinitionCommand(plan.jobDefinition));
  created.push("job definition");
  return { created };
}

/**
 * SCAR's removal: only when the compute environment named after the function exists; job
 * definitions deregistered, the queue disabled then deleted, the environment disabled then deleted.
 */
export async function removeBatch(batch: BatchClient, name: string, pace: Pace): Promise<boolean> {
  if (!(await ceStatus(batch, name))) return false;
  let token: string | undefined;
  do {
    const defs = await batch.send(
      new DescribeJobDefinitionsCommand({
        jobDefinitionName: name,
        status: "ACTIVE",
        ...(token ? { nextToken: token } : {}),
      }),
    );
    for (const d of defs.jobDefinitions ?? [])
      await batch.send(new DeregisterJobDefinitionCommand({ jobDefinition: d.jobDefinitionArn! }));
    token = defs.nextToken;
  } while (token);
  const q = await queueStatus(batch, name);
  if (q && q.status !== "DELETED") {
    if (q.state !== "DISABLED")
      await batch.send(new UpdateJobQueueCommand({ jobQueue: name, state: "DISABLED" }));
    await waitFor(pace, `job queue '${name}' to be disabled`, async () => {
      const s = await queueStatus(batch, name);
      return s?.status !== "UPDATING" ? true : undefined;
    });
    await batch.send(new DeleteJobQueueCommand({ jobQueue: name }));
    await waitFor(pace, `job queue '${name}' to be deleted`, async () => {
      const s = await queueStatus(batch, name);
      return !s || s.status === "DELETED" ? true : undefined;
    });
  }
  const ce = await ceStatus(batch, name);
  if (ce && ce.status !== "DELETED") {
    if (ce.state !== "DISABLED")
      await batch.send(new UpdateComputeEnvironmentCommand({ computeEnvironment: name, state: "DISABLED" }));
    await waitFor(pace, `compute environment '${name}' to be disabled`, async () => {
      const s = await ceStatus(batch, name);
      return s?.status !== "UPDATING" ? true : undefined;
    });
    await batch.send(new DeleteComputeEnvironmentCommand({ computeEnvironment: name }));
  }
  return true;
}
