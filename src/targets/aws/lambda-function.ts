/**
 * The Lambda function itself: create it from the function image, wait until it is Active, change its
 * code or configuration and wait until the change is done, find it, list scar's functions, give
 * other services permission to invoke it, delete it.
 */
import {
  AddPermissionCommand,
  CreateFunctionCommand,
  type CreateFunctionCommandInput,
  DeleteFunctionCommand,
  type FunctionConfiguration,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  type LambdaClient,
  ListTagsCommand,
  paginateListFunctions,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  type UpdateFunctionConfigurationCommandInput,
} from "@aws-sdk/client-lambda";
import { TargetError } from "../target-error.js";
import { errorName, isNotFound } from "./errors.js";
import { type Pace, retrying, waitFor } from "./wait.js";

/** The tags SCAR puts on what it creates; `createdby` tells scar's functions from others. */
export const CREATED_BY = { key: "createdby", value: "scar" } as const;

export interface DeployedFunction {
  config: FunctionConfiguration;
  tags: Record<string, string>;
  imageUri?: string;
  /** The image by digest, as Lambda resolved `imageUri` (a tag) when the code was last set. */
  resolvedImageUri?: string;
}

export async function findFunction(
  lambda: LambdaClient,
  name: string,
): Promise<DeployedFunction | undefined> {
  try {
    const r = await lambda.send(new GetFunctionCommand({ FunctionName: name }));
    return {
      config: r.Configuration ?? {},
      tags: r.Tags ?? {},
      ...(r.Code?.ImageUri ? { imageUri: r.Code.ImageUri } : {}),
      ...(r.Code?.ResolvedImageUri ? { resolvedImageUri: r.Code.ResolvedImageUri } : {}),
    };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export function madeByScar(fn: DeployedFunction): boolean {
  return fn.tags[CREATED_BY.key] === CREATED_BY.value;
}

/** IAM needs a few seconds before Lambda may assume a role just made or changed. */
function roleNotReady(err: unknown): boolean {
  return (
    errorName(err) === "InvalidParameterValueException" &&
    /cannot be assumed|assume/i.test((err as Error).message ?? "")
  );
}

export async function createFunction(
  lambda: LambdaClient,
  input: CreateFunctionCommandInput,
  pace: Pace,
): Promise<FunctionConfiguration> {
  return retrying(pace, roleNotReady, () => lambda.send(new CreateFunctionCommand(input)));
}

/** Waits while the function is Pending; a Failed function is an error with Lambda's reason. */
export async function waitActive(
  lambda: LambdaClient,
  name: string,
  pace: Pace,
): Promise<FunctionConfiguration> {
  return waitFor(
    pace,
    `function '${name}' to become Active`,
    async () => {
      const c = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name }));
      if (c.State === "Failed")
        throw new TargetError(
          `function '${name}' failed to start: ${c.StateReasonCode ?? ""} ${c.StateReason ?? ""}`.trim(),
          c.StateReasonCode === "ImageAccessDenied"
            ? "the role needs ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on the image's repository"
            : undefined,
        );
      if (c.State === "Active" && c.LastUpdateStatus !== "InProgress") return c;
      return undefined;
    },
    "Lambda still prepares the image; 'scar ls' shows the function once it is Active",
  );
}

/**
 * Lambda takes one change at a time: while a function is Pending or its last update InProgress,
 * another change gets ResourceConflictException, which passes once Lambda is done.
 */
function busyWithAnotherChange(err: unknown): boolean {
  return (
    errorName(err) === "ResourceConflictException" &&
    /update is in progress|in the following state: Pending/i.test((err as Error).message ?? "")
  );
}

/** Waits while the function's last change is InProgress; a Failed change is an error with Lambda's reason. */
export async function waitUpdated(
  lambda: LambdaClient,
  name: string,
  pace: Pace,
): Promise<FunctionConfiguration> {
  return waitFor(
    pace,
    `the change of function '${name}' to finish`,
    async () => {
      const c = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name }));
      if (c.LastUpdateStatus === "Failed")
        throw new TargetError(
          `the change of function '${name}' failed: ${c.LastUpdateStatusReasonCode ?? ""} ${c.LastUpdateStatusReason ?? ""}`.trim(),
          c.LastUpdateStatusReasonCode === "ImageAccessDenied"
            ? "the role needs ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on the image's repository"
            : undefined,
        );
      if (c.State === "Pending" || c.LastUpdateStatus === "InProgress") return undefined;
      return c;
    },
    "Lambda is still applying the change; 'scar ls' shows the function's settings once it is done",
  );
}

/** UpdateFunctionCode to another image, then waits until Lambda has it (LastUpdateStatus Successful). */
export async function updateCode(
  lambda: LambdaClient,
  name: string,
  imageUri: string,
  architectures: ("x86_64" | "arm64")[] | undefined,
  pace: Pace,
): Promise<FunctionConfiguration> {
  await retrying(pace, busyWithAnotherChange, () =>
    lambda.send(
      new UpdateFunctionCodeCommand({
        FunctionName: name,
        ImageUri: imageUri,
        ...(architectures ? { Architectures: architectures } : {}),
      }),
    ),
  );
  return waitUpdated(lambda, name, pace);
}

/** UpdateFunctionConfiguration (memory, timeout, environment, role ...), then waits until it is applied. */
export async function updateConfiguration(
  lambda: LambdaClient,
  input: UpdateFunctionConfigurationCommandInput,
  pace: Pace,
): Promise<FunctionConfiguration> {
  await retrying(
    pace,
    (err) => busyWithAnotherChange(err) || roleNotReady(err),
    () => lambda.send(new UpdateFunctionConfigurationCommand(input)),
  );
  return waitUpdated(lambda, input.FunctionName!, pace);
}

export async function deleteFunction(lambda: LambdaClient, name: string): Promise<boolean> {
  try {
    await lambda.send(new DeleteFunctionCommand({ FunctionName: name }));
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/**
 * Lets `principal` invoke the function. The statement id is fixed per source, so running init again
 * finds its own statement instead of piling up copies.
 */
export async function allowInvoke(
  lambda: LambdaClient,
  fn: string,
  p: { statementId: string; principal: string; sourceArn: string; sourceAccount?: string },
  pace: Pace,
): Promise<void> {
  try {
    await retrying(
      pace,
      (err) =>
        errorName(err) === "ResourceConflictException" &&
        !/already exists/i.test((err as Error).message ?? ""),
      () =>
        lambda.send(
          new AddPermissionCommand({
            FunctionName: fn,
            StatementId: p.statementId,
            Action: "lambda:InvokeFunction",
            Principal: p.principal,
            SourceArn: p.sourceArn,
            ...(p.sourceAccount ? { SourceAccount: p.sourceAccount } : {}),
          }),
        ),
    );
  } catch (err) {
    if (
      errorName(err) === "ResourceConflictException" &&
      /already exists/i.test((err as Error).message ?? "")
    )
      return;
    throw err;
  }
}

/** A statement id (letters, digits, '-', '_', '.') from a resource name. */
export function statementId(kind: string, name: string): string {
  return `scar-${kind}-${name.replace(/[^a-zA-Z0-9_.-]/g, "_")}`.slice(0, 100);
}

/**
 * The functions scar created: those that carry SCAR's `FDL` variable and the `createdby: scar` tag
 * (ListFunctions does not return tags, so only the candidates are asked for theirs).
 */
export async function listScarFunctions(lambda: LambdaClient): Promise<FunctionConfiguration[]> {
  const out: FunctionConfiguration[] = [];
  for await (const page of paginateListFunctions({ client: lambda }, {})) {
    for (const f of page.Functions ?? []) {
      if (!f.Environment?.Variables?.FDL || !f.FunctionArn) continue;
      const tags = await lambda.send(new ListTagsCommand({ Resource: f.FunctionArn }));
      if (tags.Tags?.[CREATED_BY.key] === CREATED_BY.value) out.push(f);
    }
  }
  return out;
}
