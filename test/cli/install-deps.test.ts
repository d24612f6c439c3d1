/**
 * scripts/install-deps.sh waits for apt's lock when another process holds it, saying so, instead of
 * failing at once: its wait (scripts/apt-lock.sh) against a real lock on dpkg's lock file, held by
 * a python3 process the way apt holds it (a POSIX write lock).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { test } from "node:test";

const lockScript = new URL("../../../scripts/apt-lock.sh", import.meta.url).pathname;
const LOCK = "/var/lib/dpkg/lock-frontend";

/** Output of a child process as it comes, and its end. */
function start(cmd: string, args: string[]) {
  const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (b) => {
    out += b;
  });
  child.stderr.on("data", (b) => {
    out += b;
  });
  const done = new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? -1)));
  const until = (re: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (re.test(out)) resolve();
        else if (child.exitCode !== null) reject(new Error(`ended before ${re}: ${out}`));
        else setTimeout(check, 50);
      };
      check();
    });
  return { child, done, until, output: () => out };
}

test("install-deps waits while another process holds apt's lock, and says who holds it", {
  skip: !existsSync(LOCK) && "no dpkg here",
}, async () => {
  // holds the lock as apt does (fcntl), until told to let go on stdin
  const holder = start("python3", [
    "-c",
    `import fcntl, sys\nf = open("${LOCK}", "w")\nfcntl.lockf(f, fcntl.LOCK_EX)\nprint("locked", flush=True)\nsys.stdin.readline()\nprint("released", flush=True)`,
  ]);
  try {
    await holder.until(/locked/);
    const waiter = start("bash", ["-c", `source ${lockScript}; wait_for_apt; echo "went on"`]);
    await waiter.until(/waiting for apt: process \d+ \(python3\) holds \/var\/lib\/dpkg\/lock-frontend/);
    assert.doesNotMatch(waiter.output(), /went on/, "it goes on only once the lock is free");
    holder.child.stdin.write("\n");
    await holder.done;
    assert.equal(await waiter.done, 0, waiter.output());
    assert.match(waiter.output(), /apt is free after \d+ s\nwent on\n$/);
  } finally {
    holder.child.kill();
  }
});
