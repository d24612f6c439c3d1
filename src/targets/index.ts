/**
 * Which target a command acts on, and opening it: `--target`, else $SCAR_TARGET, else scar.cfg's
 * `scar.target`, else `local`. `local` reaches the embedded engine (started in the background when
 * it is not running); `oscar:<cluster>` reaches the cluster configured in scar.cfg `oscar.<cluster>`.
 */
import { join, resolve } from "node:path";
import type { ScarConfigFile } from "../config/defaults.js";
import { configFolder } from "../config/scar-cfg.js";
import type { AwsTarget } from "./aws/aws-target.js";
import { doctorHint, engineDataDir, ensureEngine, readCredentials } from "./local-engine.js";
import { OidcTokenSource } from "./oidc.js";
import { OscarTarget } from "./oscar.js";
import { OscarClient } from "./oscar-client.js";
import { TargetError } from "./target-error.js";

export type { AwsTarget } from "./aws/aws-target.js";
export { BucketError } from "./bucket-error.js";
export type { BucketStore, ObjectEntry } from "./buckets.js";
export { logGroupOf, logStreamOf, OscarTarget } from "./oscar.js";
export { ApiError } from "./oscar-client.js";
export { TargetError } from "./target-error.js";
export type * from "./types.js";

/** What a command acts on: the embedded engine or an OSCAR cluster (one class), or AWS. */
export type CliTarget = OscarTarget | AwsTarget;

export type TargetName = { kind: "local" } | { kind: "oscar"; cluster: string } | { kind: "aws" };

export function targetName(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
  cfg: ScarConfigFile,
): { name: TargetName; from: string } {
  const [value, from] =
    flag !== undefined
      ? [flag, "--target"]
      : env.SCAR_TARGET
        ? [env.SCAR_TARGET, "SCAR_TARGET"]
        : typeof cfg.scar.target === "string" && cfg.scar.target
          ? [cfg.scar.target, "scar.cfg (scar.target)"]
          : ["local", "the default"];
  if (value === "local") return { name: { kind: "local" }, from };
  if (value === "aws") return { name: { kind: "aws" }, from };
  const m = /^oscar:(.+)$/.exec(value);
  if (m) return { name: { kind: "oscar", cluster: m[1]! }, from };
  throw new TargetError(
    `unknown target '${value}' (from ${from})`,
    "scar deploys to 'local' (the embedded engine), 'aws' (AWS Lambda) and 'oscar:<cluster>' (a cluster of scar.cfg's oscar section)",
  );
}

export interface OpenOptions {
  /** Told about engine start-up ("starting the local engine ..."). */
  say?: (line: string) => void;
  /** Long operations may draw progress on stderr (a TTY without --json). */
  progress?: boolean;
}

export async function openTarget(
  name: TargetName,
  cfg: ScarConfigFile,
  opts: OpenOptions = {},
): Promise<CliTarget> {
  if (name.kind === "aws") return openAws(cfg, opts);
  if (name.kind === "local") {
    const dataDir = resolve(engineDataDir(cfg.local));
    let info: Awaited<ReturnType<typeof ensureEngine>>;
    try {
      info = await ensureEngine({ dataDir, config: cfg.local, ...(opts.say ? { say: opts.say } : {}) });
    } catch (err) {
      throw new TargetError((err as Error).message, doctorHint(err));
    }
    if (info.started) {
      opts.say?.(
        `Local engine started: API ${info.info.api}, object store ${info.info.s3} (stop it with 'scar engine stop')`,
      );
    }
    const creds = readCredentials(dataDir);
    const client = new OscarClient({
      url: info.info.api,
      user: creds.admin.user,
      password: creds.admin.password,
    });
    return new OscarTarget("local", client, `local engine at ${info.info.api} (data folder ${dataDir})`);
  }
  const c = cfg.oscar[name.cluster];
  if (!c) {
    const known = Object.keys(cfg.oscar);
    throw new TargetError(
      `no OSCAR cluster '${name.cluster}' in scar.cfg`,
      `add it under "oscar": {"${name.cluster}": {"endpoint": ..., "auth_user": ..., "auth_password": ...}}${known.length ? ` (configured: ${known.join(", ")})` : ""}`,
    );
  }
  const str = (k: string) => (typeof c[k] === "string" && c[k] ? (c[k] as string) : undefined);
  const oidc = Boolean(str("oidc_refresh_token") || str("oidc_account_name"));
  const missing = oidc
    ? ["endpoint"].filter((k) => !c[k])
    : ["endpoint", "auth_user", "auth_password"].filter((k) => !c[k]);
  if (missing.length > 0) {
    throw new TargetError(
      `OSCAR cluster '${name.cluster}' in scar.cfg lacks ${missing.join(", ")}`,
      `set them under "oscar": {"${name.cluster}": {...}} in scar.cfg (or, for OIDC, oidc_refresh_token or oidc_account_name instead of auth_user and auth_password)`,
    );
  }
  let bearer: (() => Promise<string>) | undefined;
  if (oidc) {
    // oscar-cli's order: an oidc-agent account first, then a refresh token
    const source = new OidcTokenSource(
      {
        ...(str("oidc_account_name") ? { accountName: str("oidc_account_name") } : {}),
        ...(str("oidc_refresh_token") && !str("oidc_account_name")
          ? { refreshToken: str("oidc_refresh_token") }
          : {}),
        ...(str("oidc_issuer") ? { issuer: str("oidc_issuer") } : {}),
        ...(str("oidc_client_id") ? { clientId: str("oidc_client_id") } : {}),
        ...(str("oidc_client_secret") ? { clientSecret: str("oidc_client_secret") } : {}),
        ...(str("oidc_scope") ? { scope: str("oidc_scope") } : {}),
      },
      process.env.OIDC_SOCK,
      join(configFolder(), "oidc-tokens.json"),
    );
    bearer = async () => {
      try {
        return await source.token();
      } catch (err) {
        throw new TargetError(
          `cannot get an OIDC token for OSCAR cluster '${name.cluster}': ${(err as Error).message}`,
        );
      }
    };
  }
  const client = new OscarClient({
    url: c.endpoint!,
    ...(bearer ? { bearer } : { user: c.auth_user!, password: c.auth_password! }),
    sslVerify: c.ssl_verify !== false,
  });
  return new OscarTarget(`oscar:${name.cluster}`, client, `OSCAR cluster '${name.cluster}' at ${c.endpoint}`);
}

/**
 * The AWS target, in the region of scar.cfg's `aws.lambda.region`, else the SDK's (AWS_REGION, the
 * profile). Its modules load the AWS SDK, so they are imported only here.
 */
async function openAws(cfg: ScarConfigFile, opts: OpenOptions): Promise<AwsTarget> {
  const [{ AwsTarget }, { sdkRegion }, { publisherFactory }] = await Promise.all([
    import("./aws/aws-target.js"),
    import("./aws/clients.js"),
    import("./aws/publisher.js"),
  ]);
  const configured = cfg.aws?.lambda?.region;
  const region = (typeof configured === "string" && configured) || (await sdkRegion());
  if (!region)
    throw new TargetError(
      "no AWS region: set aws.lambda.region in scar.cfg (or lambda.region in the FDL), or AWS_REGION",
      "e.g. us-east-1",
    );
  return new AwsTarget({
    region,
    publisher: publisherFactory({ dataDir: resolve(engineDataDir(cfg.local)), tty: opts.progress === true }),
    ...(opts.say ? { say: opts.say } : {}),
  });
}
