/**
 * What AWS's API reference requires of the values scar sends, checked before anything is created:
 * a bad value is an error naming the key, never a half-made function.
 */
import type { FunctionSpec } from "../../fdl/spec.js";
import { TargetError } from "../target-error.js";

/** CreateFunction: FunctionName of a plain name, 1–64 of letters, digits, '-' and '_'. */
export const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
/** An IAM role ARN in any partition; group 2 is the account id. */
export const ROLE_ARN = /^arn:(aws[a-zA-Z-]*):iam::(\d{12}):role\/[\w+=,.@/-]{1,512}$/;
/** A region name's shape (us-east-1, eu-central-2, us-gov-west-1, cn-north-1, ap-southeast-7 ...). */
export const REGION = /^[a-z]{2,4}(-[a-z]+)+-\d{1,2}$/;
export const MEMORY = { min: 128, max: 10240 };
export const TIMEOUT = { min: 1, max: 900 };

export interface RoleRef {
  arn: string;
  partition: string;
  account: string;
}

/** The execution role of a function: the FDL's `iam.role`, else scar.cfg's `aws.iam.role`. */
export function roleOf(spec: FunctionSpec): RoleRef {
  const arn = ((spec.raw.iam as { role?: unknown } | undefined)?.role ?? "") as unknown;
  if (typeof arn !== "string" || arn.trim() === "")
    throw new TargetError(
      `function '${spec.name}' has no IAM role: set iam.role in the FDL or aws.iam.role in scar.cfg`,
      "the role is the one Lambda runs the function as (arn:aws:iam::<account>:role/<name>); 'scar aws-policy' prints what it needs",
    );
  return parseRole(arn.trim(), spec.name);
}

export function parseRole(arn: string, fn?: string): RoleRef {
  const m = ROLE_ARN.exec(arn);
  if (!m)
    throw new TargetError(
      `${fn ? `function '${fn}': ` : ""}iam.role '${arn}' is not an IAM role ARN`,
      "write it as arn:aws:iam::<12-digit account>:role/<role name>, as the IAM console shows it",
    );
  return { arn, partition: m[1]!, account: m[2]! };
}

export function checkRegion(region: string, key: string): string {
  if (!REGION.test(region))
    throw new TargetError(
      `'${region}' (${key}) is not an AWS region`,
      "write a region name such as us-east-1, eu-west-1 or ap-southeast-2",
    );
  return region;
}

/** The values of one function checked against CreateFunction's rules. */
export function checkFunction(spec: FunctionSpec): void {
  if (!FUNCTION_NAME.test(spec.name))
    throw new TargetError(
      `'${spec.name}' is not a Lambda function name`,
      "use 1 to 64 letters, digits, '-' and '_'",
    );
  if (!Number.isInteger(spec.memory) || spec.memory < MEMORY.min || spec.memory > MEMORY.max)
    throw new TargetError(
      `function '${spec.name}': memory ${spec.memory} MB is out of Lambda's range`,
      `set lambda.memory to a whole number from ${MEMORY.min} to ${MEMORY.max}`,
    );
  const t = spec.timeout ?? 300;
  if (!Number.isInteger(t) || t < TIMEOUT.min || t > TIMEOUT.max)
    throw new TargetError(
      `function '${spec.name}': timeout ${t} s is out of Lambda's range`,
      `set lambda.timeout to a whole number of seconds from ${TIMEOUT.min} to ${TIMEOUT.max}`,
    );
}
