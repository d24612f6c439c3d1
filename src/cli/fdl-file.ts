/**
 * An FDL named with -f, read with scar.cfg under it; its problems are printed and end the command.
 * Apart from context.ts so commands that read no FDL do not load the parser.
 */
import type { LoadedConfig } from "../config/scar-cfg.js";
import { FdlError, type FdlResult, loadFdl } from "../fdl/index.js";
import { fdlFailure, loadConfig } from "./context.js";

export function readFdlFile(file: string, cfg: LoadedConfig = loadConfig()): FdlResult {
  try {
    return loadFdl(file, { config: cfg });
  } catch (err) {
    if (err instanceof FdlError) throw fdlFailure(err, file);
    throw err;
  }
}
