/**
 * Who may start the local engine here: root, or an ordinary user when this host gives them user
 * namespaces (the engine then runs rootless, see rootless.ts). A user without them is refused before
 * the engine touches its data folder, with what is missing (the sysctl, the kernel option or the
 * package) and the fix. The engine never runs sudo itself: the hint tells the person at the terminal.
 */
import { type Blocker, usernsBlocker } from "./host-checks.js";
import { type HostInfo, readUsernsInfo } from "./host-info.js";

export interface Refusal {
  message: string;
  hint: string;
  /** what stops user namespaces */
  userns?: Blocker;
}

export function engineRefusal(
  f: Pick<HostInfo, "uid" | "sysctl" | "userNamespacesBuilt" | "unshareProbe">,
): Refusal | undefined {
  if (f.uid === 0) return undefined;
  const b = usernsBlocker(f);
  if (!b) return undefined;
  return {
    message: `the local engine runs rootless containers for an ordinary user (you are uid ${f.uid}), and this host gives you no user namespace: ${b.reason}`,
    hint: `ask an administrator to allow user namespaces: ${b.fix}; or run scar as root`,
    userns: b,
  };
}

/** The refusal for the user this process runs as (one `unshare -Ur true` when not root). */
export function checkEngineUser(): Refusal | undefined {
  if (process.getuid?.() === 0) return undefined;
  return engineRefusal(readUsernsInfo());
}
