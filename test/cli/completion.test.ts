/**
 * Shell completion run in real shells (bash, fish) with the real `scar` on PATH: `--target` offers
 * the targets and `-n` the local engine's functions, not file names; and `--help` keeps the flags
 * that act only on AWS under their own heading.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, test } from "node:test";
import { bin, runScar } from "./harness.js";

const dir = mkdtempSync(join(tmpdir(), "scar-completion-"));
const cfgDir = join(dir, "cfg");
const dataDir = join(dir, "data");
after(() => rmSync(dir, { recursive: true, force: true }));

mkdirSync(cfgDir, { recursive: true });
writeFileSync(
  join(cfgDir, "scar.cfg"),
  JSON.stringify({
    scar: { config_version: "2.0.0" },
    local: { data_dir: dataDir, port: 0, s3_port: 0 },
    oscar: { lab: { endpoint: "http://127.0.0.1:1" } },
  }),
);
// Two deployed functions as the engine's registry keeps them, and a file that is no function.
for (const name of ["grayify", "cowsay"]) {
  mkdirSync(join(dataDir, "functions", name), { recursive: true });
  writeFileSync(join(dataDir, "functions", name, "function.json"), "{}\n");
}
// files a file-name completion would offer
writeFileSync(join(dir, "local-file.txt"), "");
writeFileSync(join(dir, "grayify.yaml"), "");

const env = { ...process.env, SCAR_CONFIG_FOLDER: cfgDir, PATH: `${dirname(bin)}:${process.env.PATH}` };

function shell(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { cwd: dir, env }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
}

async function script(shellName: string): Promise<string> {
  const r = await runScar(["completion", shellName], { cfgDir });
  assert.equal(r.code, 0, r.stderr);
  const file = join(dir, `scar.${shellName}`);
  writeFileSync(file, r.stdout);
  return file;
}

/** local and the clusters of scar.cfg (with the example cluster its defaults add), no file names. */
function assertTargets(values: string[]) {
  assert.ok(values.includes("local") && values.includes("oscar:lab"), values.join(" "));
  assert.ok(
    values.every((v) => v === "local" || v.startsWith("oscar:")),
    values.join(" "),
  );
}

const words = (s: string) => s.split(/\s+/).filter(Boolean).sort();

test("bash: --target offers the targets, -n the functions, other values file names", async () => {
  const file = await script("bash");
  const complete = (line: string[]) =>
    shell("bash", [
      "-c",
      `source ${file}; COMP_WORDS=(${line.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${line.length - 1}; _scar; echo "\${COMPREPLY[@]}"`,
    ]);
  assertTargets(words(await complete(["scar", "ls", "--target", ""])));
  assert.deepEqual(words(await complete(["scar", "log", "-n", ""])), ["cowsay", "grayify"]);
  assert.deepEqual(words(await complete(["scar", "rm", "--name", "gr"])), ["grayify"]);
  assert.deepEqual(words(await complete(["scar", "jobs", "ls", "-n", ""])), ["cowsay", "grayify"]);
  assert.deepEqual(words(await complete(["scar", "init", "-f", "gr"])), ["grayify.yaml"]);
});

test("fish: commands, flags, and the values of --target and -n", async () => {
  const file = await script("fish");
  const complete = async (line: string) =>
    words(
      (await shell("fish", ["--no-config", "-c", `source ${file}; complete -C '${line}'`]))
        .split("\n")
        .map((l) => l.split("\t")[0]!)
        .join(" "),
    );
  assert.ok((await complete("scar ")).includes("init"));
  assert.ok((await complete("scar jobs ")).includes("dead"));
  assertTargets(await complete("scar ls --target "));
  assert.deepEqual(await complete("scar run -n "), ["cowsay", "grayify"]);
  assert.ok((await complete("scar invoke -")).includes("-db"), "SCAR's multi-letter flags");
  assert.ok((await complete("scar log --re")).includes("--request-id"));
});

test("scar __complete prints nothing, and no error, where it cannot read", async () => {
  const r = await runScar(["__complete", "functions"], {
    cfgDir: join(dir, "no-such-cfg"),
    env: { SCAR_DATA_DIR: join(dir, "no-such-data") },
  });
  assert.equal(r.code, 0);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr, "");
  assert.doesNotMatch((await runScar(["--help"], { cfgDir })).stdout, /__complete/);
});

test("--help lists the flags that act only on AWS under their own heading", async () => {
  for (const cmd of [["init"], ["ls"], ["run"], ["put"]]) {
    const help = (await runScar([...cmd, "--help"], { cfgDir })).stdout;
    const at = help.indexOf("Options for the aws target");
    assert.ok(at > 0, `${cmd}: ${help}`);
    assert.ok(help.indexOf("-pf, --profile") > at, `${cmd}: -pf under the aws heading`);
  }
  const init = (await runScar(["init", "--help"], { cfgDir })).stdout;
  const aws = init.indexOf("Options for the aws target");
  for (const f of ["-db, --deployment-bucket", "-l, --layers", "-r, --iam-role", "-ep, --extra-payload"])
    assert.ok(init.indexOf(f) > aws, `${f} under the aws heading`);
  for (const f of ["-m, --memory", "-i, --image", "--target"])
    assert.ok(init.indexOf(f) < aws, `${f} with the other options`);
});
