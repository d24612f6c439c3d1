/**
 * The one rule for function names, used wherever a name is checked (scar validate, scar init and the
 * engine's API all load definitions through the FDL pipeline, which calls this).
 *
 * AWS Lambda allows capitals and '_'; OSCAR clusters make Kubernetes objects of their services, so
 * names there are DNS-1123 labels. scar's engine emulates Lambda for `functions.aws` (Lambda's rule)
 * and OSCAR for `functions.oscar` (OSCAR's rule). A function deployed to an OSCAR cluster follows
 * OSCAR's rule whatever its provider, so `scar validate` and `scar init` for that target apply it.
 */

/** Which platform's rule: Lambda's, or OSCAR's (Kubernetes) service names. */
export type NameRule = "lambda" | "service";

/** AWS's rule for function names (the name part of CreateFunction's FunctionName). */
const LAMBDA_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** A DNS-1123 label, as Kubernetes names objects. */
const SERVICE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SERVICE_RULE =
  "at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit";

/**
 * Why `name` is not allowed under `rule`, with the fix; undefined when it is. `lambda`: the name is
 * a `functions.aws` function's, which may have been written for Lambda's wider rule.
 */
export function nameProblem(name: string, rule: NameRule, lambda: boolean): string | undefined {
  const lambdaOk = LAMBDA_NAME.test(name);
  if (rule === "lambda")
    return lambdaOk
      ? undefined
      : `'${name}' is not a valid function name: use 1 to 64 letters, digits, '-' or '_' (AWS Lambda's rule)${suggestion(name)}`;
  if (SERVICE_NAME.test(name) && name.length <= 63) return undefined;
  if (lambda && lambdaOk)
    return `'${name}' is a valid AWS Lambda name, but OSCAR clusters make Kubernetes objects of their services, whose names are ${SERVICE_RULE}${suggestion(name)}`;
  return `'${name}' is not a valid service name: use ${SERVICE_RULE}${suggestion(name)}`;
}

function suggestion(name: string): string {
  const s = serviceNameFor(name);
  return s ? `; e.g. '${s}'` : "";
}

/**
 * The name both rules accept that is closest to `name`: lower case, runs of anything else than
 * letters and digits as one '-', trimmed to 63 characters. Undefined when nothing is left.
 */
export function serviceNameFor(name: string): string | undefined {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .slice(0, 63)
    .replace(/^-+|-+$/g, "");
  return s === "" ? undefined : s;
}
