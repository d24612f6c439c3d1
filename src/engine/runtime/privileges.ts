/**
 * Who may start the local engine here: root, for now. A user who is not root is refused before the
 * engine touches its data folder, with what is missing and the fix (run as root; and, when this host
 * has no user namespaces either, the sysctl or package that rootless containers will need). The
 * engine never runs sudo itself: the hint tells the person at the terminal.
 */
import { type Blocker, usernsBlocker } from "./host-checks.js";
import { type HostInfo, readUsernsInfo } from "./host-info.js";

export interface Refusal {
  message: string;
  hint: string;
  /** what stops user namespaces too, when something does */
  userns?: Blocker;
}

export function engineRefusal(
  f: Pick<HostInfo, "uid" | "sysctl" | "userNamespacesBuilt" | "unshareProbe">,
): Refusal | undefined {
  if (f.uid === 0) return undefined;
  const b = usernsBlocker(f);
  const base = `the local engine needs root (you are uid ${f.uid}): rootless containers are not supported yet (issue 20)`;
  const root = "run scar as root (for example with sudo)";
  if (!b) return { message: base, hint: root };
  return {
    message: `${base}, and this host has no user namespaces for them either: ${b.reason}`,
    hint: `${root}; for user namespaces: ${b.fix}`,
    userns: b,
  };
}

/** The refusal for the user this process runs as (one `unshare -Ur true` when not root). */
export function checkEngineUser(): Refusal | undefined {
  if (process.getuid?.() === 0) return undefined;
  return engineRefusal(readUsernsInfo());
}
