/** What `scar ls` and `scar rm` do. */
import type { FunctionInfo } from "../../targets/index.js";
import { loadConfig, printJson, say, withTarget } from "../context.js";
import { CliError } from "../errors.js";
import { fdlFunctionNames } from "../fdl-names.js";
import { formatTable } from "../table.js";
import type { LsFlags, RmFlags } from "./ls.js";

/** `bucket[/folder]` -> [bucket, prefix]; the prefix is not slash-terminated, as SCAR lists it. */
export function splitBucketPath(path: string, folder?: string): [string, string] {
  const clean = path.replace(/^s3:\/\//, "").replace(/^\/+/, "");
  const slash = clean.indexOf("/");
  const bucket = slash < 0 ? clean : clean.slice(0, slash);
  let prefix = slash < 0 ? "" : clean.slice(slash + 1).replace(/\/+$/, "");
  if (folder) prefix = [prefix, folder.replace(/^\/+|\/+$/g, "")].filter(Boolean).join("/");
  if (!bucket) throw new CliError(`'${path}' names no bucket; write BUCKET or BUCKET/FOLDER`, 2);
  return [bucket, prefix];
}

const JOB_WORDS: [keyof NonNullable<FunctionInfo["jobs"]>, string][] = [
  ["queued", "queued"],
  ["running", "running"],
  ["succeeded", "ok"],
  ["failed", "failed"],
  ["dead", "dead"],
];

/** `scar ls`'s JOBS cell: jobs by status, then how those that ran in execution environments started. */
export function jobsText(fn: Pick<FunctionInfo, "jobs" | "starts">): string {
  const parts = JOB_WORDS.filter(([k]) => (fn.jobs?.[k] ?? 0) > 0).map(([k, w]) => `${fn.jobs![k]} ${w}`);
  const starts = fn.starts && fn.starts.cold + fn.starts.warm > 0 ? fn.starts : undefined;
  const text = parts.join(", ");
  if (!starts) return text;
  return `${text}; starts: ${starts.cold} cold, ${starts.warm} warm`;
}

export async function runLs(flags: LsFlags): Promise<void> {
  await withTarget(flags, async (target) => {
    if (flags.bucket) {
      const [bucket, prefix] = splitBucketPath(flags.bucket, flags.bucketFolder);
      const store = await target.buckets();
      const keys: { key: string; size: number }[] = [];
      for await (const o of store.list(bucket, prefix)) {
        if (flags.json) keys.push({ key: o.key, size: o.size });
        else say(o.key);
      }
      if (flags.json) printJson({ Bucket: bucket, Prefix: prefix, Objects: keys });
      return;
    }
    const fns = (await target.list()).sort((a, b) => a.name.localeCompare(b.name));
    if (target.name === "aws") {
      // SCAR's own columns: Lambda keeps no job counts
      if (flags.json || flags.verbose)
        printJson({
          Functions: fns.map((f) =>
            flags.verbose
              ? f.raw
              : {
                  Name: f.name,
                  Memory: f.memory,
                  Timeout: f.timeout,
                  Image_id: f.image,
                  Api_gateway: f.apiUrl ?? "-",
                  Sup_version: f.supervisorVersion ?? "-",
                },
          ),
        });
      else {
        say("AWS FUNCTIONS:");
        say(
          formatTable(
            ["NAME", "MEMORY", "TIME", "IMAGE_ID", "API_URL", "SUPERVISOR_VERSION"],
            fns.map((f) => [f.name, f.memory, f.timeout, f.image, f.apiUrl, f.supervisorVersion]),
          ),
        );
      }
      return;
    }
    if (flags.json || flags.verbose) {
      printJson({
        Functions: fns.map((f) =>
          flags.verbose
            ? { ...f.raw, jobs: f.jobs ?? {}, ...(f.starts ? { starts: f.starts } : {}) }
            : {
                Name: f.name,
                Memory: f.memory,
                Timeout: f.timeout,
                Image_id: f.image,
                Api_gateway: f.apiUrl ?? "-",
                Sup_version: f.supervisorVersion ?? "-",
                Status: "Active",
                Jobs: f.jobs ?? {},
                ...(f.starts ? { Starts: f.starts } : {}),
              },
        ),
      });
      return;
    }
    say(target.name === "local" ? "LOCAL FUNCTIONS:" : `OSCAR SERVICES - ${target.describe()}:`);
    say(
      formatTable(
        ["NAME", "MEMORY", "TIME", "IMAGE_ID", "API_URL", "SUPERVISOR_VERSION", "STATUS", "JOBS"],
        fns.map((f) => [
          f.name,
          f.memory,
          f.timeout,
          f.image,
          f.apiUrl,
          f.supervisorVersion,
          "Active",
          jobsText(f),
        ]),
      ),
    );
  });
}

export async function runRm(flags: RmFlags): Promise<void> {
  const given = [flags.name, flags.all, flags.confFile].filter(Boolean).length;
  if (given !== 1) throw new CliError("say what to delete: one of -n NAME, -a (all) or -f FDL", 2);
  const cfg = loadConfig();
  let names: string[] | undefined;
  if (flags.name) names = [flags.name];
  // names only: a definition whose script or image file is gone must still be removable
  if (flags.confFile) names = fdlFunctionNames(flags.confFile);
  await withTarget(
    flags,
    async (target) => {
      const list = names ?? (await target.list()).map((f) => f.name);
      let missing = 0;
      for (const name of list) {
        // OSCAR deletes a service's buckets with it; scar's engine keeps them
        const buckets = await target.bucketsDeletedWith(name);
        const removed = await target.remove(name);
        if (flags.json || flags.verbose)
          printJson({
            LambdaOutput: {
              FunctionName: name,
              Deleted: removed,
              ...(removed && buckets.length > 0 ? { DeletedBuckets: buckets } : {}),
            },
          });
        else if (removed) {
          say(`Function '${name}' successfully deleted.`);
          if (buckets.length > 0)
            say(
              `${target.name} deleted its buckets too, with their files: ${buckets.map((b: string) => `'${b}'`).join(", ")}`,
            );
        }
        if (!removed) {
          missing++;
          if (!flags.json) process.stderr.write(`error: Unable to find the function '${name}'\n`);
        }
      }
      if (missing > 0) process.exitCode = 1;
    },
    cfg,
  );
}
