/**
 * The engine's secrets, generated on first start into `<data dir>/credentials` (JSON, mode 0600):
 * the admin user of the HTTP API and the key pair of the embedded object store.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../config/scar-cfg.js";

export interface EngineCredentials {
  admin: { user: string; password: string };
  s3: { accessKeyId: string; secretAccessKey: string };
}

export function loadOrCreateCredentials(dataDir: string): {
  credentials: EngineCredentials;
  created: boolean;
} {
  const path = join(dataDir, "credentials");
  if (existsSync(path)) {
    const c = JSON.parse(readFileSync(path, "utf8")) as EngineCredentials;
    if (!c.admin?.password || !c.s3?.secretAccessKey)
      throw new Error(`${path} is incomplete; move it away to get new credentials`);
    return { credentials: c, created: false };
  }
  const credentials: EngineCredentials = {
    admin: { user: "scar", password: token(24) },
    // S3 access keys are upper-case alphanumerics by convention; some clients check the shape.
    s3: { accessKeyId: `SCAR${randomBytes(8).toString("hex").toUpperCase()}`, secretAccessKey: token(30) },
  };
  writeFileAtomic(path, `${JSON.stringify(credentials, null, 2)}\n`); // written 0600
  return { credentials, created: true };
}

function token(bytes: number): string {
  return randomBytes(bytes).toString("base64url");
}
