/**
 * The body of a synchronous invocation (POST /run/<name>), as OSCAR's supervisor makes it
 * (faas-supervisor, BinarySupervisor.create_response): for an event that is not a storage event, the
 * base64 of the one file the script left in its output folder, or of a zip of them (paths relative
 * to the folder) when there are several; otherwise, and when there is none, the base64 of the
 * script's output. `x-scar-output` says which: `file:<path>`, `zip:<n>` or `logs`.
 */
import type { ServerResponse } from "node:http";
import { ZipFile } from "yazl";
import type { InvocationResult } from "../../supervisor/index.js";

export interface SyncAnswer {
  /** `file:<relative path, percent-encoded but for '/'>`, `zip:<number of files>` or `logs`. */
  output: string;
  /** The decoded body. */
  data: Buffer;
}

/** The answer of a result whose kept files (if any) fit: InvocationResult.kept is not `too-large`. */
export async function syncAnswer(result: InvocationResult): Promise<SyncAnswer> {
  const files = result.kept?.kind === "files" ? result.kept.files : [];
  if (files.length === 1) {
    const f = files[0]!;
    return { output: `file:${encodeURIComponent(f.rel).replace(/%2F/g, "/")}`, data: f.data };
  }
  if (files.length > 1) return { output: `zip:${files.length}`, data: await zip(files) };
  return { output: "logs", data: result.output };
}

/** A zip of the files, with their relative paths as entry names. */
export function zip(files: { rel: string; data: Buffer }[]): Promise<Buffer> {
  const z = new ZipFile();
  const mtime = new Date();
  for (const f of files) z.addBuffer(f.data, f.rel, { mtime, mode: 0o100644 });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    z.outputStream.on("data", (c: Buffer) => chunks.push(c));
    z.outputStream.on("error", reject);
    z.outputStream.on("end", () => resolve(Buffer.concat(chunks)));
    z.on("error", reject);
    z.end();
  });
}

/**
 * Sends `data` base64-encoded, a slice at a time as the client takes it, so a large body is never
 * held a second time as one base64 string.
 */
export async function sendBase64(res: ServerResponse, status: number, data: Buffer): Promise<void> {
  res.writeHead(status, {
    "content-type": "text/plain; charset=us-ascii",
    "content-length": 4 * Math.ceil(data.length / 3),
  });
  const step = 3 * 256 * 1024; // a multiple of 3: only the last slice is padded
  for (let i = 0; i < data.length && !res.destroyed; i += step) {
    if (!res.write(data.subarray(i, i + step).toString("base64")))
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off("drain", done);
          res.off("close", done);
          resolve();
        };
        res.on("drain", done);
        res.on("close", done);
      });
  }
  res.end();
}
