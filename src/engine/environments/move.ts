/**
 * Moves an invocation's files between the supervisor's workspace (on the data disk) and its
 * environment's folders (on the environment's disk, or on the data disk when it has none): a rename
 * when both are on one file system, else a copy (a reflink where the file system can).
 */
import { constants } from "node:fs";
import { copyFile, lchown, lstat, mkdir, readdir, readlink, rename, symlink } from "node:fs/promises";
import { join } from "node:path";

export interface Owner {
  uid: number;
  gid: number;
}

/**
 * Moves everything in `from` into `to` (an existing folder), and gives what it moved to `owner` when
 * one is given. Only regular files, folders and symbolic links are copied across file systems: a
 * device or a FIFO an invocation made in its output folder is not an output (stage-out skips them).
 */
export async function moveEntries(from: string, to: string, owner?: Owner): Promise<void> {
  for (const name of await readdir(from)) {
    const src = join(from, name);
    const dst = join(to, name);
    try {
      await rename(src, dst);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
      await copyTree(src, dst);
    }
    if (owner) await chownTree(dst, owner);
  }
}

async function copyTree(src: string, dst: string): Promise<void> {
  const st = await lstat(src);
  if (st.isDirectory()) {
    await mkdir(dst, { mode: st.mode & 0o7777 });
    for (const name of await readdir(src)) await copyTree(join(src, name), join(dst, name));
  } else if (st.isFile()) {
    // copyFile keeps the mode; FICLONE shares the blocks where the file system allows (btrfs, xfs)
    await copyFile(src, dst, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
  } else if (st.isSymbolicLink()) {
    await symlink(await readlink(src), dst);
  }
}

async function chownTree(path: string, owner: Owner): Promise<void> {
  await lchown(path, owner.uid, owner.gid);
  const st = await lstat(path);
  if (!st.isDirectory()) return;
  for (const name of await readdir(path)) await chownTree(join(path, name), owner);
}
