/**
 * Where scar's in-container agent is: `dist/agent/scar-agent`, built by scripts/build-agent.mjs after
 * tsc (a static binary, see agent/scar-agent.c). It is missing when the machine that built scar had
 * no gcc or no static libc; warm environments are then off and every invocation gets a fresh container.
 */
import { accessSync, constants } from "node:fs";
import { fileURLToPath } from "node:url";

/** this file runs as dist/src/engine/runtime/agent-binary.js; the agent is dist/agent/scar-agent */
const BUILT = fileURLToPath(new URL("../../../agent/scar-agent", import.meta.url));

/** the agent's absolute path, or undefined when it was not built (or is not executable) */
export function agentBinaryPath(): string | undefined {
  try {
    accessSync(BUILT, constants.X_OK);
    return BUILT;
  } catch {
    return undefined;
  }
}

/** what `npm run build` needs to build the agent, for messages that say why warm environments are off */
export const AGENT_BUILD_HINT =
  "install gcc and a static C library (Debian: apt-get install gcc libc6-dev), then run `npm run build` in the scar folder";
