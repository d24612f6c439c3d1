/**
 * AWS failures as one line for the terminal: what scar was doing, the service's own message, and a
 * hint for the errors users meet most (credentials, permissions, an unknown region, throttling).
 * Never a stack trace: the SDK's exception is reduced to its name and message here.
 */
import { TargetError } from "../target-error.js";

export const POLICY_HINT = "'scar aws-policy' prints the permissions the deploying user and the role need";

interface SdkError {
  name?: string;
  message?: string;
  code?: string;
  hostname?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

/** The error's AWS name (`ResourceNotFoundException`, `NoSuchBucket`, ...). */
export function errorName(err: unknown): string {
  const e = err as SdkError;
  return e?.name ?? e?.code ?? "";
}

export function httpStatus(err: unknown): number | undefined {
  return (err as SdkError)?.$metadata?.httpStatusCode;
}

export function isNotFound(err: unknown): boolean {
  const n = errorName(err);
  return (
    n === "ResourceNotFoundException" ||
    n === "NotFoundException" ||
    n === "NoSuchBucket" ||
    n === "RepositoryNotFoundException" ||
    n === "NoSuchEntity" ||
    n === "NoSuchEntityException" ||
    (httpStatus(err) === 404 && n !== "UnknownEndpoint")
  );
}

const THROTTLED = new Set([
  "ThrottlingException",
  "Throttling",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "SlowDown",
]);

function hintFor(e: SdkError, region?: string): string | undefined {
  const name = e.name ?? e.code ?? "";
  const msg = e.message ?? "";
  if (e.code === "ENOTFOUND" || /getaddrinfo ENOTFOUND/.test(msg))
    return region
      ? `no AWS endpoint answers for region '${region}': check lambda.region in the FDL or aws.lambda.region in scar.cfg (e.g. us-east-1, eu-west-1)`
      : "check the region and your network";
  if (e.code === "ECONNREFUSED")
    return "nothing listens at the endpoint: check AWS_ENDPOINT_URL (is LocalStack running?)";
  if (name === "CredentialsProviderError" || /Could not load credentials/i.test(msg))
    return "give AWS credentials: 'aws configure', AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";
  if (
    /^(UnrecognizedClientException|InvalidClientTokenId|InvalidAccessKeyId|SignatureDoesNotMatch)$/.test(name)
  )
    return "the AWS credentials are not valid: check AWS_PROFILE or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY";
  if (/^(ExpiredToken|ExpiredTokenException|RequestExpired)$/.test(name))
    return "the AWS session has expired: log in again ('aws sso login') or renew the session token";
  if (/AccessDenied|UnauthorizedOperation|AuthorizationError|NotAuthorized/.test(name)) return POLICY_HINT;
  if (THROTTLED.has(name))
    return "AWS kept throttling the requests after every retry: wait a minute and run the same command again";
  if (name === "InvalidParameterValueException" && /role|assume/i.test(msg))
    return "the role must trust lambda.amazonaws.com (its trust policy), and a new role takes a few seconds to be usable; see 'scar aws-policy'";
  if (name === "ResourceConflictException")
    return "the function is being changed by another operation: run the same command again in a few seconds";
  return undefined;
}

/** `doing` failed: the service's message, one line, with a hint when one helps. */
export function awsError(err: unknown, doing: string, region?: string): TargetError {
  if (err instanceof TargetError) return err;
  const e = (err ?? {}) as SdkError;
  const name = e.name ?? e.code ?? "Error";
  const raw = (e.message ?? String(err)).replace(/\s+/g, " ").trim();
  const message = raw && raw !== name ? `${name}: ${raw}` : name;
  return new TargetError(`${doing} failed: ${message}`, hintFor(e, region));
}
