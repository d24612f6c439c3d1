/**
 * Stage-in and stage-out straight into the embedded store, in process: the engine owns the store, so
 * going through the S3 API over loopback (signing, checksums, HTTP) only adds time to every job.
 * Writes take the same path as an S3 PutObject (temp file, fsync, journal commit, rename), so they
 * fire the same notifications: a workflow's next step is triggered exactly as by an upload.
 *
 * Staging moves as few bytes as the file systems allow:
 * - stage-in copies with the kernel (`copyFile` with COPYFILE_FICLONE: a copy-on-write reflink on
 *   file systems that have them (XFS, btrfs), else copy_file_range/sendfile, no bytes through the
 *   engine), and hard-links the stored file only when the caller says nothing writes to the copy in
 *   place (`mayLink`, see Workspace.inputReadOnly): a hard link shares the inode, so a script that
 *   appended to its input would change the stored object;
 * - stage-out of a file the caller no longer needs (`consume`) renames it into the store's temp
 *   folder when it is on the store's file system, and commits it from there exactly as an upload
 *   (its ownership and mode made the store's, fsync, the temp folder's fsync and the journal's before
 *   the commit returns), instead of copying it; a copy is written into a temp file whose name was
 *   made durable ahead, so its commit is the file's fsync and the journal's (see put()).
 */
import { createHash } from "node:crypto";
import { constants, createReadStream, createWriteStream, rmSync, writeFileSync } from "node:fs";
import { copyFile, link, open, rename } from "node:fs/promises";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  type DownloadOptions,
  StorageError,
  type StorageProvider,
  type UploadOptions,
} from "../storage/types.js";
import type { Backend } from "./store/backend.js";
import { validateKey } from "./store/keys.js";

export class EmbeddedStoreProvider implements StorageProvider {
  constructor(
    readonly id: string,
    private readonly backend: Backend,
  ) {}

  async download(bucket: string, key: string, destFile: string, opts: DownloadOptions = {}): Promise<void> {
    const fail = (err: unknown) =>
      new StorageError(`downloading '${key}' from bucket '${bucket}' failed: ${describe(err)}`, this.id, {
        cause: err,
      });
    let files: string[];
    try {
      ({ files } = this.backend.objectFiles(bucket, key));
    } catch (err) {
      throw fail(err);
    }
    // The object's temp file while its rename is pending, then its final path: a file missing here
    // was renamed meanwhile (to the next one), never lost.
    for (const [i, file] of files.entries()) {
      try {
        if (opts.mayLink && (await linkIfPossible(file, destFile))) return;
        await copyFile(file, destFile, constants.COPYFILE_FICLONE);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT" && i < files.length - 1) continue;
        throw fail(err);
      }
    }
  }

  async upload(srcFile: string, bucket: string, key: string, opts: UploadOptions = {}): Promise<void> {
    if (opts.consume && (await this.put(bucket, key, "binary/octet-stream", (abs) => take(srcFile, abs))))
      return;
    // A small file in one read and one write, fsynced through the handle that wrote it.
    let bytes: Buffer | undefined;
    const src = await open(srcFile, "r");
    try {
      if ((await src.stat()).size <= SMALL) bytes = await src.readFile();
    } finally {
      await src.close();
    }
    if (bytes) {
      const small = bytes;
      await this.put(
        bucket,
        key,
        "binary/octet-stream",
        async (abs) => {
          const out = await open(abs, "w");
          try {
            await out.writeFile(small);
            await out.sync();
          } finally {
            await out.close();
          }
          return { size: small.length, etag: createHash("md5").update(small).digest("hex"), synced: true };
        },
        true,
      );
      return;
    }
    await this.put(
      bucket,
      key,
      "binary/octet-stream",
      async (abs) => {
        const md5 = createHash("md5");
        let size = 0;
        const count = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            md5.update(chunk);
            size += chunk.length;
            cb(null, chunk);
          },
        });
        await pipeline(createReadStream(srcFile), count, createWriteStream(abs));
        return { size, etag: md5.digest("hex") };
      },
      true,
    );
  }

  /** An empty `<folder>/` object, the folder marker SCAR and the S3 console create. */
  async putFolderMarker(bucket: string, key: string): Promise<void> {
    await this.put(
      bucket,
      key,
      "application/x-directory",
      async (abs) => {
        writeFileSync(abs, "");
        return { size: 0, etag: createHash("md5").digest("hex") };
      },
      true,
    );
  }

  /**
   * Has `write` make a temp file in the store, fsyncs it, and commits it as `key`. False (nothing
   * committed, nothing left) when `write` answers that it could not make the file this way.
   */
  private async put(
    bucket: string,
    key: string,
    contentType: string,
    write: (abs: string) => Promise<{ size: number; etag: string; synced?: boolean } | false>,
    /** `write` writes into the file at `abs` (an empty one exists there), never replaces it */
    writesInPlace = false,
  ): Promise<boolean> {
    // What each disk commit protects (the upload returns, and the job is done and its events fired,
    // only after all of them):
    // 1. the temp file's fsync (take(), the small write, or below): its bytes (and after take() its
    //    owner and mode) are on disk before a journal record names them;
    // 2. the temp folder's fsync: the temp file's name, by which replay finds the bytes. A file taken
    //    by rename is a new name, made durable by the fsync the journal runs before each batch (one
    //    for the batch's records). A file written in place goes into a temp file made ahead whose
    //    name is durable already (backend.durableTempPath: one fsync for 32 of them), so its commit
    //    skips that fsync: two disk commits per output instead of three;
    // 3. the journal's fdatasync: the record (metadata, events, the move into place), shared by the
    //    batch's records (group commit).
    // The rename into place that follows the commit needs none: replay redoes it from the record.
    let durableName = false;
    let tmp = this.backend.newTempPath();
    if (writesInPlace)
      try {
        tmp = await this.backend.durableTempPath();
        durableName = true;
      } catch {
        // (the store is closing, or the disk is full: the commit says so, with a fresh temp file)
      }
    const abs = this.backend.abs(tmp);
    try {
      validateKey(key);
      const made = await write(abs);
      if (!made) return false;
      // The object's bytes are durable before its metadata is committed; asynchronously, so that the
      // engine's main thread does not wait for the disk.
      if (!made.synced) {
        const handle = await open(abs, "r");
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
      await this.backend.commitObject(
        bucket,
        { key, size: made.size, etag: made.etag, headers: { "content-type": contentType }, meta: {} },
        tmp,
        "s3:ObjectCreated:Put",
        { requestId: `scar-${Date.now().toString(36)}`, principal: "scar-engine", sourceIp: "127.0.0.1" },
        undefined,
        undefined,
        durableName,
      );
      return true;
    } catch (err) {
      throw new StorageError(`uploading '${key}' to bucket '${bucket}' failed: ${describe(err)}`, this.id);
    } finally {
      rmSync(abs, { force: true, recursive: true });
    }
  }
}

/** Errors of link(2) that only say this file cannot be linked there: the caller copies instead. */
const NO_LINK = new Set(["EXDEV", "EPERM", "EMLINK", "EEXIST", "ENOTSUP", "EOPNOTSUPP", "EACCES"]);

async function linkIfPossible(file: string, dest: string): Promise<boolean> {
  try {
    await link(file, dest);
    return true;
  } catch (err) {
    if (NO_LINK.has((err as NodeJS.ErrnoException).code ?? "")) return false;
    throw err;
  }
}

/**
 * Moves `src` to `abs` (a temp path of the store) when both are on one file system and `src` is a
 * regular file with no other name, and makes it a file like the store's own: owned by the engine's
 * user, mode 0600. A container wrote it, as its own user and with the modes it chose: left so, the
 * store would hold files another user owns (and could be given setuid bits by a script). Answers
 * false, with `src` where it was, when the file must be copied instead.
 */
async function take(
  src: string,
  abs: string,
): Promise<{ size: number; etag: string; synced: boolean } | false> {
  try {
    await rename(src, abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EXDEV") return false;
    throw err;
  }
  // O_NOFOLLOW: a link put there after the output folder was listed is refused, never followed;
  // O_NONBLOCK: a FIFO does not hang the open.
  const handle = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new Error(`'${src}' is not a regular file`);
    if (st.nlink !== 1) {
      // Another name shares these bytes (a hard link the script made): renaming would let a write
      // through that name change the stored object.
      await rename(abs, src);
      return false;
    }
    const uid = process.getuid?.() ?? st.uid;
    const gid = process.getgid?.() ?? st.gid;
    if (st.uid !== uid || st.gid !== gid) await handle.chown(uid, gid);
    if ((st.mode & 0o7777) !== 0o600) await handle.chmod(0o600);
    const md5 = createHash("md5");
    let size = 0;
    const buf = Buffer.allocUnsafe(Math.min(Math.max(st.size, 1), 1 << 20));
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, size);
      if (bytesRead === 0) break;
      md5.update(buf.subarray(0, bytesRead));
      size += bytesRead;
    }
    // fsync, not fdatasync: the new owner and mode must be as durable as the bytes.
    await handle.sync();
    return { size, etag: md5.digest("hex"), synced: true };
  } finally {
    await handle.close();
  }
}

/** Outputs up to this size are copied into the store with one read and one write, without streams. */
const SMALL = 1024 * 1024;

function describe(err: unknown): string {
  const e = err as { code?: string; name?: string; message?: string };
  return [e.code ?? e.name, e.message].filter(Boolean).join(": ");
}
