/**
 * The local engine's data folder for the commands that open it directly (`scar serve`, `scar image`),
 * found as the target commands find it: scar.cfg `local.data_dir`, else $SCAR_DATA_DIR, else
 * ~/.scar/data. A missing scar.cfg is not created here (these commands keep their output clean), and
 * this is kept apart from context.ts, which loads the targets (and the AWS SDK) these commands do not
 * need.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { ScarConfigFile } from "../config/defaults.js";
import { configFolder, loadScarConfig } from "../config/scar-cfg.js";
import { FdlError } from "../fdl/issues.js";
import { engineDataDir } from "../targets/local-engine.js";
import { CliError } from "./errors.js";

/**
 * For the commands that write in a data folder themselves (`scar serve`, `scar store serve`,
 * `scar image`): from here on this process creates private files (umask 077), and the folder is
 * made 0700, or refused with what to do when another user owns it (src/engine/data-dir.ts).
 */
export async function openPrivateDataDir(dir: string): Promise<void> {
  const { DataDirError, openDataDir, usePrivateUmask } = await import("../engine/data-dir.js");
  usePrivateUmask();
  try {
    openDataDir(dir, (line) => process.stderr.write(`scar: ${line}\n`));
  } catch (e) {
    if (e instanceof DataDirError) throw new CliError(`cannot use the data folder: ${e.message}`, 1, e.fix);
    const err = e as NodeJS.ErrnoException;
    if (err.code === "EACCES" || err.code === "EPERM")
      throw new CliError(
        `cannot use the data folder ${dir}: permission denied${err.path && err.path !== dir ? ` (${err.path})` : ""}`,
        1,
        "the engine's data belongs to the user who started it (root, or an ordinary user's rootless engine): run scar as that user, or give another --data-dir",
      );
    throw e;
  }
}

export async function configuredDataDir(): Promise<string> {
  return (await configuredEngine()).dataDir;
}

/** The data folder, and scar.cfg itself when there is one (the engine reads a few more of its values). */
export async function configuredEngine(): Promise<{ dataDir: string; config?: ScarConfigFile }> {
  if (!existsSync(join(configFolder(), "scar.cfg"))) return { dataDir: engineDataDir(undefined) };
  try {
    const cfg = loadScarConfig();
    for (const n of cfg.notices) process.stderr.write(`${n}\n`);
    return { dataDir: engineDataDir(cfg.config.local), config: cfg.config };
  } catch (err) {
    if (!(err instanceof FdlError)) throw err;
    const { fdlFailure } = await import("./context.js");
    throw fdlFailure(err, "scar.cfg");
  }
}
