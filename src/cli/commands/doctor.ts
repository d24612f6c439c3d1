/** `scar doctor [--json]`: can the local engine run containers here, and what is missing. */
import type { Command } from "commander";

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description(
      "Check that this machine can run functions locally (container runtime, cgroups, user namespaces, overlayfs, limits)",
    )
    .option("-j, --json", "print one JSON document")
    .option("--no-container", "skip the test container")
    .addHelpText(
      "after",
      `
Reports the OCI runtime scar would use (crun, else runc); the cgroup mode (v1, hybrid or unified v2,
on v2 whether the engine's cgroup is delegated and its controllers) and whether systemd is PID 1;
root or rootless (an ordinary user's engine runs its containers in a user namespace); user
namespaces (sysctls, 'unshare -Ur true'), newuidmap and /etc/subuid ranges; the overlay flavour;
which memory, pids, cpu and disk limits hold as root and which rootless. It runs a tiny test container, checks that the engine's data folder
is closed to other users, and prints what each missing piece costs and the package or sysctl that
fixes it. Exits 1 when the local engine cannot run containers here.`,
    )
    .action(async (opts: { json?: boolean; container: boolean }) => {
      const { diagnose } = await import("../../engine/runtime/doctor.js");
      const report = await diagnose({ container: opts.container });
      const data = await dataFolderCheck();
      report.checks.push({ name: "data folder", ...data });
      if (data.status === "fail") report.ok = false;
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      } else {
        const { formatTable } = await import("../table.js");
        const mark = { ok: "ok", warn: "WARN", fail: "FAIL", skip: "-" } as const;
        process.stdout.write(
          `${formatTable(
            ["CHECK", "STATUS", "FOUND"],
            report.checks.map((c) => [c.name, mark[c.status], c.value]),
          )}\n`,
        );
        const fixes = report.checks.filter((c) => c.fix && c.status !== "ok");
        if (fixes.length > 0) {
          process.stdout.write("\nTo fix:\n");
          for (const c of fixes) process.stdout.write(`  ${c.name}: ${c.fix}\n`);
        }
        process.stdout.write(
          report.ok
            ? "\nThe local engine can run containers here.\n"
            : "\nThe local engine cannot run containers here.\n",
        );
      }
      process.exitCode = report.ok ? 0 : 1;
    });
}

/** The engine's data folder (scar.cfg local.data_dir, $SCAR_DATA_DIR or ~/.scar/data): is it private? */
async function dataFolderCheck(): Promise<import("../../engine/data-dir.js").DataDirCheck> {
  const { checkDataDir } = await import("../../engine/data-dir.js");
  const { configuredDataDir } = await import("../data-dir.js");
  let dir: string;
  try {
    dir = await configuredDataDir();
  } catch (e) {
    return { status: "warn", value: `unknown: ${(e as Error).message}` };
  }
  return checkDataDir(dir);
}
