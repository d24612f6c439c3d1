/**
 * The engine's data folder: where it is, and keeping it private. The folder holds unpacked image
 * layers whose setuid programs keep their bits (containers need them), the credentials, the objects,
 * the job database and the runs' work folders; any user who can enter it could run those programs
 * as root or read the data. So it is 0700 and owned by the engine's user, and the processes that
 * write in it (`scar serve`, `scar store serve`, `scar image`) run with umask 077, so that what they
 * create stays private even if someone later opens the top folder.
 *
 * A folder of ours that is too open is tightened (with a notice) rather than refused: it is the
 * engine's own folder, and refusing would only make every user type the chmod. A folder owned by
 * another user is refused: its owner can enter it whatever its mode.
 */
import { chmodSync, mkdirSync, type Stats, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";

/** The engine's data folder when none is given: $SCAR_DATA_DIR, else ~/.scar/data. */
export function defaultDataDir(): string {
  return process.env.SCAR_DATA_DIR || join(homedir(), ".scar", "data");
}

/** Files and folders the engine creates are its user's alone. */
export const PRIVATE_UMASK = 0o077;

/**
 * Makes everything this process creates from now on private to its user (files 0600, folders 0700,
 * whatever mode the code that creates them asks for). For the engine's entry points; the container
 * runtime sets its own umask for what the containers see.
 */
export function usePrivateUmask(): void {
  process.umask(PRIVATE_UMASK);
}

/** A data folder that cannot be made private: the message says why, `fix` what to do. */
export class DataDirError extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
    this.name = "DataDirError";
  }
}

const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, "0");

function ownUid(): number {
  return process.geteuid?.() ?? 0;
}

/** What is wrong with an existing folder, if anything: "foreign" (another user's) or "open" (others may enter). */
export function privacyProblem(st: Stats): "not-folder" | "foreign" | "open" | undefined {
  if (!st.isDirectory()) return "not-folder";
  if (st.uid !== ownUid()) return "foreign";
  if ((st.mode & 0o077) !== 0) return "open";
  return undefined;
}

export interface PrivateDirResult {
  created: boolean;
  /** the mode it had when it was too open and was tightened to 0700 */
  tightenedFrom?: string;
}

/**
 * Creates `dir` (and missing parents) 0700, or checks an existing one: another user's folder, or
 * something that is not a folder, is refused (DataDirError); one open to others is chmod'ed 0700.
 */
export function ensurePrivateDir(dir: string): PrivateDirResult {
  const created = mkdirSync(dir, { recursive: true, mode: 0o700 }) !== undefined;
  const st = statSync(dir);
  switch (privacyProblem(st)) {
    case "not-folder":
      throw new DataDirError(`${dir} is not a folder`, "give a folder with --data-dir");
    case "foreign":
      if (st.uid === 0)
        throw new DataDirError(
          `${dir} belongs to root, and this is uid ${ownUid()}`,
          "run scar as root (sudo), as the engine that owns it does, or use another folder with --data-dir",
        );
      throw new DataDirError(
        `${dir} belongs to uid ${st.uid}, not to this user (uid ${ownUid()}): its owner could read the engine's data and run the images' setuid programs as root`,
        `make it yours (chown -R ${ownUid()} ${dir}; chmod 700 ${dir}) or use another folder with --data-dir`,
      );
    case "open": {
      chmodSync(dir, 0o700);
      return { created, tightenedFrom: octal(st.mode) };
    }
    default:
      return { created };
  }
}

/**
 * The engine's data folder made private (see ensurePrivateDir); a folder that had to be tightened is
 * told to `say`, once, with its old mode.
 */
export function openDataDir(dir: string, say?: (line: string) => void): PrivateDirResult {
  const r = ensurePrivateDir(dir);
  if (r.tightenedFrom)
    say?.(
      `the data folder ${dir} was open to other users (mode ${r.tightenedFrom}); it is now 0700, as the engine needs`,
    );
  return r;
}

export interface DataDirCheck {
  status: "ok" | "warn" | "fail";
  value: string;
  fix?: string;
}

/** What `scar doctor` says of a data folder (without changing it). */
export function checkDataDir(dir: string): DataDirCheck {
  let st: Stats;
  try {
    st = statSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { status: "ok", value: `${dir} (not created yet; will be 0700)` };
    return { status: "warn", value: `${dir}: ${code ?? (e as Error).message}` };
  }
  switch (privacyProblem(st)) {
    case "not-folder":
      return { status: "fail", value: `${dir} is not a folder`, fix: "point local.data_dir at a folder" };
    case "foreign":
      if (st.uid === 0)
        return {
          status: "warn",
          value: `${dir} belongs to root: only root may use it`,
          fix: "sudo scar ...",
        };
      return {
        status: "fail",
        value: `${dir} belongs to uid ${st.uid}, who could run the images' setuid programs as root`,
        fix: `chown -R ${ownUid()} ${dir}; chmod 700 ${dir}`,
      };
    case "open":
      return {
        status: "warn",
        value: `${dir} is open to other users (mode ${octal(st.mode)}): they could run the images' setuid programs as root (the engine makes it 0700 when it starts)`,
        fix: `chmod 700 ${dir}`,
      };
    default: {
      const parent = replaceableBy(dir);
      if (parent)
        return {
          status: "warn",
          value: `${dir} is private, but ${parent.path} ${parent.why}: they could put another folder in its place`,
          fix: `move the data folder (scar.cfg local.data_dir) under folders only root may change`,
        };
      return { status: "ok", value: `${dir} (${octal(st.mode)}, private)` };
    }
  }
}

/**
 * The first folder above `dir` in which another user could rename `dir` (or one of its parents)
 * away and put their own in its place: one they own, or one others may write in without the
 * sticky bit (which, as in /tmp, lets only an entry's owner rename it).
 */
function replaceableBy(dir: string): { path: string; why: string } | undefined {
  let p = resolve(dir);
  while (p !== dirname(p)) {
    p = dirname(p);
    let st: Stats;
    try {
      st = statSync(p);
    } catch {
      return undefined;
    }
    if (st.uid !== 0 && st.uid !== ownUid()) return { path: p, why: `belongs to uid ${st.uid}` };
    if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0)
      return { path: p, why: `may be changed by other users (mode ${octal(st.mode)})` };
  }
  return undefined;
}
