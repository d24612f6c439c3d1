/**
 * Upload triggers: the bucket notification rules the engine keeps on the embedded store for the
 * deployed functions' inputs. Rules the engine owns are recognized by their ARN; rules a user set
 * through the S3 API are left alone.
 */
import type { FunctionSpec } from "../fdl/spec.js";
import { notificationPrefix } from "../fdl/storage-path.js";

const ARN_PREFIX = "arn:scar:lambda:local:function:";

/** Providers that mean "the embedded store" on the local target. */
export const EMBEDDED_PROVIDERS = new Set(["s3.default", "minio.default"]);

export function functionArn(name: string): string {
  return `${ARN_PREFIX}${name}`;
}

/** The function an engine-owned ARN names, or undefined for someone else's rule. */
export function functionOfArn(arn: string): string | undefined {
  return arn.startsWith(ARN_PREFIX) ? arn.slice(ARN_PREFIX.length) : undefined;
}

export interface TriggerRule {
  id: string;
  kind: "Lambda";
  arn: string;
  events: string[];
  filters: { name: string; value: string }[];
}

/** The engine's rules per bucket for these functions' inputs on the embedded store. */
export function triggerRules(fns: FunctionSpec[]): Map<string, TriggerRule[]> {
  const byBucket = new Map<string, TriggerRule[]>();
  for (const fn of fns) {
    fn.input.forEach((input, i) => {
      if (!EMBEDDED_PROVIDERS.has(input.storage_provider)) return;
      const prefix = notificationPrefix(input);
      const rules = byBucket.get(input.bucket) ?? [];
      rules.push({
        id: `scar-${fn.name}-${i}`,
        kind: "Lambda",
        arn: functionArn(fn.name),
        events: ["s3:ObjectCreated:*"],
        filters: prefix ? [{ name: "prefix", value: prefix }] : [],
      });
      byBucket.set(input.bucket, rules);
    });
  }
  return byBucket;
}
