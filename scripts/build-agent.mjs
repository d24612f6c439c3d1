// Builds scar's in-container agent (src/engine/runtime/agent/scar-agent.c) into dist/agent/scar-agent,
// a static binary: it is mounted into images that may have no libc of their own.
// Run by `npm run build` and `prepare` after tsc. Without gcc or a static libc it says, in one line,
// that warm environments are off and what to install, and exits 0: the rest of scar works without it.
// A compile error in the agent itself fails the build: that is a bug of ours, not of the machine.
//
//   node scripts/build-agent.mjs [--force]
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const source = join(root, "src/engine/runtime/agent/scar-agent.c");
const output = join(root, "dist/agent/scar-agent");
const self = fileURLToPath(import.meta.url);

const WARNINGS = ["-Wall", "-Wextra", "-Werror"];
// Hardening that works in a static binary: a static PIE (ASLR for the agent itself) with full RELRO,
// fortified libc calls, stack protector and stack-clash probes. -fcf-protection only where gcc knows it (x86).
const HARDENING = [
  "-D_FORTIFY_SOURCE=2",
  "-fstack-protector-strong",
  "-fstack-clash-protection",
  ...(process.arch === "x64" || process.arch === "ia32" ? ["-fcf-protection"] : []),
  "-Wl,-z,relro,-z,now",
  "-Wl,-z,noexecstack",
];

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

function cc(args) {
  return spawnSync("gcc", args, { encoding: "utf8" });
}

function off(why, install) {
  console.error(
    `scar: warm environments are off: ${why}; install ${install} and run \`npm run build\` again`,
  );
  process.exit(0);
}

const built = mtime(output);
if (!process.argv.includes("--force") && built !== undefined && built >= Math.max(mtime(source), mtime(self)))
  process.exit(0);

const probe = cc(["--version"]);
if (probe.error || probe.status !== 0)
  off("no C compiler (gcc) to build scar's agent", "gcc (Debian: apt-get install gcc libc6-dev)");

// Can this gcc link a static program, and a static PIE? (A static libc is libc6-dev's libc.a on Debian.)
// The scratch folder is next to the output, so the binary can be renamed into place.
mkdirSync(dirname(output), { recursive: true });
const tmp = mkdtempSync(join(dirname(output), ".build-"));
let failure;
try {
  failure = build(tmp);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
if (failure?.off) off(failure.off, failure.install);
if (failure) {
  process.stderr.write(failure.output);
  console.error("scar: building the agent failed (above)");
  process.exit(1);
}

/** builds into `tmp` and renames the binary into place; returns what went wrong, if anything */
function build(tmp) {
  const trivial = join(tmp, "t.c");
  writeFileSync(trivial, "int main(void) { return 0; }\n");
  const linked = (flags) => cc([...flags, "-o", join(tmp, "t"), trivial]).status === 0;
  if (!linked(["-static"]))
    return {
      off: "gcc cannot link a static program (no static C library)",
      install: "libc6-dev (Debian: apt-get install gcc libc6-dev)",
    };
  const pie = linked(["-static-pie", "-fPIE"]) ? ["-static-pie", "-fPIE"] : ["-static"];

  const partial = join(tmp, "scar-agent");
  const r = cc([...pie, "-Os", "-s", ...WARNINGS, ...HARDENING, "-o", partial, source]);
  if (r.status !== 0) return { output: r.stderr || String(r.error) };
  // run by the image's user, whoever that is, whatever umask built it
  chmodSync(partial, 0o755);
  // renamed into place in one step: a half-written binary is never found by agentBinaryPath()
  renameSync(partial, output);
  return undefined;
}
