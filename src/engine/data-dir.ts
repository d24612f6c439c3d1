import { homedir } from "node:os";
import { join } from "node:path";

/** The engine's data folder when none is given: $SCAR_DATA_DIR, else ~/.scar/data. */
export function defaultDataDir(): string {
  return process.env.SCAR_DATA_DIR || join(homedir(), ".scar", "data");
}
