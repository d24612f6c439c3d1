/**
 * The other end of foreign-reader.ts: runs as root of the rootless engine's user namespace (ids
 * mapped as the engine maps them), where the layers' files given to subordinate ids are readable, and
 * answers one JSON line per JSON line on stdin:
 *
 *   {"op":"lstat","path":P}        -> {"st":{kind,target?,mode,mtime,atime}} or {"st":null} (no entry)
 *   {"op":"copy","src":S,"dst":D}  -> {} once S's bytes are in the new file D (made, not replaced)
 *   anything failing               -> {"error":"<message>"}
 *
 * It only reads, except for the new files it is asked to make (in the unpacker's own folder).
 */
import { constants, copyFileSync, lstatSync, readlinkSync } from "node:fs";
import { createInterface } from "node:readline";

type Request = { op: "lstat"; path: string } | { op: "copy"; src: string; dst: string };

function answer(req: Request): unknown {
  if (req.op === "copy") {
    copyFileSync(req.src, req.dst, constants.COPYFILE_EXCL);
    return {};
  }
  let st: import("node:fs").Stats;
  try {
    st = lstatSync(req.path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return { st: null };
    throw e;
  }
  const kind = st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : st.isFile() ? "file" : "other";
  return {
    st: {
      kind,
      ...(kind === "symlink" ? { target: readlinkSync(req.path) } : {}),
      mode: st.mode & 0o7777,
      mtime: st.mtimeMs / 1000,
      atime: st.atimeMs / 1000,
    },
  };
}

for await (const line of createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY })) {
  let out: unknown;
  try {
    out = answer(JSON.parse(line) as Request);
  } catch (e) {
    out = { error: (e as Error).message };
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}
