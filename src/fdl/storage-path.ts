/**
 * Storage paths (`bucket[/folder...]`) and S3 bucket names. Bucket rules follow S3's naming rules
 * for general-purpose buckets, which MinIO applies too; each message says what to change.
 */

export interface ParsedPath {
  bucket: string;
  folder: string;
  /** The path without slashes at the ends. */
  path: string;
}

/** Parses `bucket[/folder...]`; returns an error message instead when the path cannot work. */
export function parseStoragePath(raw: string, checkBucket: boolean): ParsedPath | { error: string } {
  if (raw.trim() === "") return { error: "the path is empty; write it as bucket[/folder...]" };
  if (raw.startsWith("/")) {
    return {
      error: `'${raw}' starts with '/'; write it as bucket[/folder...], e.g. '${raw.replace(/^\/+/, "")}'`,
    };
  }
  const path = raw.replace(/\/+$/, "");
  const parts = path.split("/");
  if (parts.some((p) => p === "")) {
    return { error: `'${raw}' has an empty folder name ('//'); write it as bucket[/folder...]` };
  }
  const bad = parts.find((p) => p === "." || p === "..");
  if (bad)
    return { error: `'${raw}' has a '${bad}' folder; storage paths cannot go up or refer to themselves` };
  const bucket = parts[0]!;
  if (checkBucket) {
    const err = bucketNameError(bucket);
    if (err) return { error: err };
  }
  return { bucket, folder: parts.slice(1).join("/"), path };
}

export function bucketNameError(name: string): string | undefined {
  const why = bucketRule(name);
  return why ? `'${name}' is not a valid bucket name: ${why}` : undefined;
}

function bucketRule(b: string): string | undefined {
  if (b.length < 3 || b.length > 63) return `it has ${b.length} characters; use 3 to 63`;
  const badChar = /[^a-zA-Z0-9.-]/.exec(b);
  if (badChar) return `'${badChar[0]}' is not allowed; use lower-case letters, digits, '.' and '-'`;
  if (/[A-Z]/.test(b)) return `use lower-case letters only ('${b.toLowerCase()}')`;
  if (!/^[a-z0-9]/.test(b) || !/[a-z0-9]$/.test(b)) return "it must begin and end with a letter or digit";
  if (b.includes("..")) return "two dots may not stand next to each other";
  if (/^\d+\.\d+\.\d+\.\d+$/.test(b)) return "it may not look like an IP address";
  for (const p of ["xn--", "sthree-", "amzn-s3-demo-"])
    if (b.startsWith(p)) return `it may not start with '${p}'`;
  for (const s of ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]) {
    if (b.endsWith(s)) return `it may not end with '${s}'`;
  }
  return undefined;
}

/** The key prefix an upload notification on this path filters on: `folder/`, or `""` for the bucket. */
export function notificationPrefix(p: { folder: string }): string {
  return p.folder === "" ? "" : `${p.folder}/`;
}
