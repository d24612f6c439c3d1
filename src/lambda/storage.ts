/**
 * The storage providers of a function inside Lambda, all through the AWS SDK (src/storage/s3.ts):
 *
 * - `s3.default`: the function's role, i.e. the region and credentials Lambda puts in the
 *   environment (AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN; without
 *   keys there, the SDK's own chain); `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` sends it to any S3-compatible
 *   store (path-style URLs then, as such stores need);
 * - `s3.<id>`: the keys and region of `storage_providers.s3.<id>`, on Amazon S3 (or the endpoint above);
 * - `minio.<id>`: its endpoint and keys.
 * Other provider types (onedata, webdav, rucio) are not supported in the function yet: asking for
 * one is a stage error naming it.
 */
import type { StorageProviderSpec } from "../fdl/spec.js";
import { S3Provider } from "../storage/s3.js";
import { StorageError, type StorageProvider, type StorageResolver } from "../storage/types.js";

export interface LambdaStorage {
  resolve: StorageResolver;
  destroy(): void;
}

export function lambdaStorage(
  providers: Record<string, StorageProviderSpec>,
  env: NodeJS.ProcessEnv = process.env,
): LambdaStorage {
  const made = new Map<string, S3Provider>();
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || "us-east-1";
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  const role =
    env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? {
          accessKeyId: env.AWS_ACCESS_KEY_ID,
          secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
          ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
        }
      : {};
  const make = (id: string): S3Provider => {
    const spec = providers[id];
    const type = id.split(".")[0];
    const s = (spec?.settings ?? {}) as Record<string, unknown>;
    const str = (k: string) => (typeof s[k] === "string" && s[k] !== "" ? (s[k] as string) : undefined);
    if (type === "s3") {
      const accessKeyId = str("access_key");
      const secretAccessKey = str("secret_key");
      return new S3Provider(id, {
        region: str("region") ?? region,
        ...(endpoint ? { endpoint } : {}),
        ...(accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : role),
      });
    }
    if (type === "minio") {
      const accessKeyId = str("access_key");
      const secretAccessKey = str("secret_key");
      return new S3Provider(id, {
        endpoint: str("endpoint") ?? endpoint ?? "http://minio-service.minio:9000",
        region: str("region") ?? region,
        forcePathStyle: true,
        ...(accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : {}),
      });
    }
    throw new StorageError(
      `the storage provider '${id}' (${type}) is not supported inside the Lambda function yet: use s3 or minio providers`,
      id,
    );
  };
  return {
    resolve(id: string): StorageProvider {
      let p = made.get(id);
      if (!p) {
        p = make(id);
        made.set(id, p);
      }
      return p;
    },
    destroy() {
      for (const p of made.values()) p.destroy();
      made.clear();
    },
  };
}
