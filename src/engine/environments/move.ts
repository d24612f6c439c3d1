/**
 * Moves an invocation's files between the supervisor's workspace (on the data disk) and its
 * environment's folders (on the environment's disk, or on the data disk when it has none): a rename
 * when both are on one file system, else a copy (a reflink where the file system can).
 */
import { constants } from "node:fs";
import { copyFile, lchown, lstat, mkdir, readdir, readlink, rename, symlink } from "node:fs/promises";

export interface Owner {
  uid: number;
  gid: number;
}

export interface MoveOptions {
  /**
   * `from` and `to` are known to be on two file systems (the caller compared their devices): copy at
   * once, without the rename that would fail with EXDEV for every entry
   */
  crossDevice?: boolean;
}

/**
 * Moves everything in `from` into `to` (an existing folder), and gives what it moved to `owner` when
 * one is given. Only regular files, folders and symbolic links are copied across file systems: a
 * device or a FIFO an invocation made in its output folder is not an output (stage-out skips them).
 */
export async function moveEntries(
  from: string,
  to: string,
  owner?: Owner,
  opts: MoveOptions = {},
): Promise<void> {
  // Names as bytes: an invocation may name its outputs in anything but UTF-8 (stage-out warns)
  const src = Buffer.from(from);
  const dst = Buffer.from(to);
  for (const name of await readdir(src, { encoding: "buffer" })) {
    const a = child(src, name);
    const b = child(dst, name);
    if (opts.crossDevice) await copyTree(a, b);
    else
      try {
        await rename(a, b);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
        await copyTree(a, b);
      }
    if (owner) await chownTree(b, owner);
  }
}

/** Gives everything in `dir` (not `dir` itself) to `owner`. */
export async function giveEntries(dir: string, owner: Owner): Promise<void> {
  const d = Buffer.from(dir);
  for (const name of await readdir(d, { encoding: "buffer" })) await chownTree(child(d, name), owner);
}

function child(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, Buffer.from("/"), name]);
}

async function copyTree(src: Buffer, dst: Buffer): Promise<void> {
  const st = await lstat(src);
  if (st.isDirectory()) {
    await mkdir(dst, { mode: st.mode & 0o7777 });
    for (const name of await readdir(src, { encoding: "buffer" }))
      await copyTree(child(src, name), child(dst, name));
  } else if (st.isFile()) {
    // copyFile keeps the mode; FICLONE shares the blocks where the file system allows (btrfs, xfs)
    await copyFile(src, dst, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
  } else if (st.isSymbolicLink()) {
    await symlink(await readlink(src, { encoding: "buffer" }), dst);
  }
}

async function chownTree(path: Buffer, owner: Owner): Promise<void> {
  await lchown(path, owner.uid, owner.gid);
  const st = await lstat(path);
  if (!st.isDirectory()) return;
  for (const name of await readdir(path, { encoding: "buffer" })) await chownTree(child(path, name), owner);
}
