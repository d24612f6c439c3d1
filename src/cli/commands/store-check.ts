/** `scar store fsck` and `scar store repair`: run the checks and print their reports. */
import type { FsckReport, RepairReport } from "../../engine/store/fsck.js";
import { CliError } from "../errors.js";

function describe(r: FsckReport, out: string[]): void {
  out.push(
    `journal ${r.journal}: ${r.records} intact record(s)${r.unchecked ? ` (${r.unchecked} without checksum, from an earlier version)` : ""}`,
  );
  for (const d of r.damaged) {
    out.push(`  DAMAGED line ${d.line} (byte offset ${d.offset}, ${d.length} bytes): ${d.reason}`);
  }
  if (r.torn) {
    out.push(
      `  unfinished last line ${r.torn.line} (byte offset ${r.torn.offset}, ${r.torn.length} bytes): an interrupted write, dropped at start-up`,
    );
  }
  out.push(`${r.buckets} bucket(s), ${r.objects} object(s) in the index`);
  for (const b of r.lostBuckets) out.push(`  bucket folder not in the index: ${b}`);
  for (const m of r.missing) out.push(`  object whose file is gone: ${m.bucket}/${m.key} (${m.path})`);
  for (const o of r.orphans) {
    const as = o.key !== undefined ? `can be adopted as ${o.bucket}/${o.key}` : "its key is unknown";
    out.push(`  file no object points to: ${o.path} (${o.size} bytes), ${as}`);
  }
}

async function withDataDir<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.name === "DataDirInUseError")
      throw new CliError(err.message, 1, "stop `scar store serve` (or the engine) first");
    if (err.code === "ENOENT" || err.message.includes("not a scar store data dir"))
      throw new CliError(err.message, 2);
    throw new CliError(err.message);
  }
}

/** Prints the report; the exit code is 1 when the data dir needs repair. */
export async function runFsck(dataDir: string, json: boolean): Promise<number> {
  const { fsck } = await import("../../engine/store/fsck.js");
  const r = await withDataDir(() => fsck(dataDir));
  if (json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else {
    const out: string[] = [];
    describe(r, out);
    out.push(
      r.clean
        ? "clean"
        : `needs repair: run "scar store repair --data-dir ${r.dataDir}" (it keeps the journal aside first)`,
    );
    process.stdout.write(`${out.join("\n")}\n`);
  }
  return r.clean ? 0 : 1;
}

export async function runRepair(dataDir: string, json: boolean): Promise<number> {
  const { repair } = await import("../../engine/store/fsck.js");
  const r: RepairReport = await withDataDir(() => repair(dataDir));
  if (json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else {
    const out: string[] = [];
    describe(r, out);
    out.push(`the journal as it was is kept in ${r.savedJournal}`);
    if (r.damaged.length)
      out.push(`dropped ${r.damaged.length} damaged line(s); every intact record was kept`);
    for (const b of r.adoptedBuckets) out.push(`bucket recreated: ${b}`);
    for (const o of r.adopted) out.push(`adopted: ${o.bucket}/${o.key} (${o.size} bytes)`);
    for (const m of r.missing) out.push(`forgotten (file gone): ${m.bucket}/${m.key}`);
    for (const s of r.setAside) out.push(`set aside: ${s.from} -> ${s.to}`);
    out.push(r.clean ? "nothing needed repair" : "repaired");
    process.stdout.write(`${out.join("\n")}\n`);
  }
  return 0;
}
