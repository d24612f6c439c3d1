/**
 * Test fixtures for the runtime: a busybox-static base layer and a small second layer, built in a
 * temp folder the way the images side hands layers over (unpacked folders, bottom to top).
 */
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ImageInput } from "../../../src/engine/runtime/index.js";

export const BUSYBOX = "/bin/busybox";

export interface Fixture {
  root: string;
  base: string;
  top: string;
  image: ImageInput;
  cleanup(): void;
}

/** Base layer: busybox + applets, /etc/passwd with an "app" user. Top layer: /etc/motd, /app/hello.sh, a whiteout of /etc/issue, an opaque /opq. */
export function makeFixture(): Fixture {
  const root = mkdtempSync(join(tmpdir(), "scar-rt-"));
  const base = join(root, "layers", "base");
  for (const d of ["bin", "proc", "sys", "dev", "tmp", "etc", "root", "home/app"])
    mkdirSync(join(base, d), { recursive: true });
  chmodSync(join(base, "tmp"), 0o1777);
  execFileSync("cp", [BUSYBOX, join(base, "bin", "busybox")]);
  const applets = execFileSync(BUSYBOX, ["--list"], { encoding: "utf8" }).split("\n");
  for (const a of applets) {
    if (a === "" || a === "busybox") continue;
    symlinkSync("busybox", join(base, "bin", a));
  }
  writeFileSync(
    join(base, "etc/passwd"),
    "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
  );
  writeFileSync(join(base, "etc/group"), "root:x:0:\napp:x:1000:\nextra:x:2000:app\n");
  writeFileSync(join(base, "etc/issue"), "base issue\n");
  writeFileSync(join(base, "etc/motd"), "from base\n");
  const top = join(root, "layers", "top");
  mkdirSync(join(top, "etc"), { recursive: true });
  mkdirSync(join(top, "app"), { recursive: true });
  writeFileSync(join(top, "etc/motd"), "from top\n");
  writeFileSync(join(top, "app/hello.sh"), "echo hello from the top layer\n");
  execFileSync("mknod", [join(top, "etc/issue"), "c", "0", "0"]); // overlay whiteout
  // an opaque directory: the top layer's /opq hides what the base layer has there
  mkdirSync(join(base, "opq"));
  writeFileSync(join(base, "opq/old"), "hidden\n");
  mkdirSync(join(top, "opq"));
  writeFileSync(join(top, "opq/new"), "visible\n");
  execFileSync("setfattr", ["-n", "trusted.overlay.opaque", "-v", "y", join(top, "opq")]);
  const image: ImageInput = {
    config: {
      Env: ["PATH=/bin", "GREETING=image"],
      Cmd: ["/bin/sh", "-c", "echo image cmd"],
      WorkingDir: "/",
    },
    layers: [base, top],
  };
  return { root, base, top, image, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** A digest of a folder tree (names, sizes, modes) to prove a run left a layer untouched. */
export function treeDigest(dir: string): string {
  return execFileSync("sh", ["-c", `cd '${dir}' && find . -printf '%p %s %m %y\\n' | sort | sha256sum`], {
    encoding: "utf8",
  });
}

/** Lines of /proc/self/mountinfo that mention `dir`. */
export function mountsMentioning(dir: string, pid: number | "self" = "self"): string[] {
  return execFileSync("cat", [`/proc/${pid}/mountinfo`], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.includes(dir));
}

/**
 * Host processes whose command line contains `marker` (a container's leftovers would show here).
 * `skipZombies`: not those dead and waiting to be reaped; `skipSelf`: not this process.
 */
export function hostProcesses(
  marker: string,
  opts: { skipZombies?: boolean; skipSelf?: boolean } = {},
): number[] {
  const out: number[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p) || (opts.skipSelf && Number(p) === process.pid)) continue;
    try {
      if (!readFileSync(`/proc/${p}/cmdline`, "utf8").replace(/\0/g, " ").includes(marker)) continue;
      if (opts.skipZombies && /^State:\s+Z/m.test(readFileSync(`/proc/${p}/status`, "utf8"))) continue;
      out.push(Number(p));
    } catch {
      // gone
    }
  }
  return out;
}
