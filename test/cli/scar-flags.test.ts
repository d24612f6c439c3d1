/**
 * SCAR v4's flags, one by one, with the real binary against a real engine; and the pieces under them
 * (flag spelling, the command-line FDL layer, generated names) as plain functions.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { Command } from "commander";
import { addFunctionDefOptions, awsOverrides, nameFromImage } from "../../src/cli/function-flags.js";
import { addTargetOption } from "../../src/cli/options.js";
import { rewriteScarFlags } from "../../src/cli/scar-flags.js";
import { busyboxRootfs } from "../engine/images/helpers.js";
import { bin, useCliWorkspace } from "./harness.js";

const { dir, cfgDir, scar, ok, importImage } = useCliWorkspace("scar-flags-");

/** The deployed service definition of a function, as `scar ls -v` prints it. */
// biome-ignore lint/suspicious/noExplicitAny: the service JSON is checked field by field below
async function service(name: string): Promise<Record<string, any>> {
  const doc = JSON.parse(await ok(["ls", "-v"]));
  const s = doc.Functions.find((f: { name: string }) => f.name === name);
  assert.ok(s, `${name} is not listed`);
  return s;
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** A `docker save` tarball made with tar(1): manifest.json, the config, one layer. */
function dockerSave(rootfs: string, out: string) {
  const work = join(dir, "save");
  mkdirSync(work, { recursive: true });
  execFileSync("tar", ["-C", rootfs, "-cf", join(work, "layer.tar"), "."]);
  const layer = readFileSync(join(work, "layer.tar"));
  const config = Buffer.from(
    JSON.stringify({
      architecture: process.arch === "arm64" ? "arm64" : "amd64",
      os: "linux",
      config: { Env: ["PATH=/bin"], Cmd: ["/bin/echo", "from the image file"] },
      rootfs: { type: "layers", diff_ids: [`sha256:${sha(layer)}`] },
    }),
  );
  mkdirSync(join(work, sha(layer)));
  writeFileSync(join(work, sha(layer), "layer.tar"), layer);
  rmSync(join(work, "layer.tar"));
  writeFileSync(join(work, `${sha(config)}.json`), config);
  writeFileSync(
    join(work, "manifest.json"),
    JSON.stringify([{ Config: `${sha(config)}.json`, RepoTags: null, Layers: [`${sha(layer)}/layer.tar`] }]),
  );
  execFileSync("tar", ["-C", work, "-cf", out, "."]);
}

before(async () => {
  const root = busyboxRootfs(join(dir, "rootfs"), [
    "sh",
    "echo",
    "cat",
    "wc",
    "basename",
    "sleep",
    "md5sum",
    "cp",
  ]);
  await importImage(root, "test/busybox", ["ENV PATH=/bin"]);
  dockerSave(root, join(dir, "image.tar"));
  writeFileSync(join(dir, "echo.sh"), 'echo "A=$A"; echo "level=$LOG_LEVEL"\n');
  writeFileSync(
    join(dir, "copy.sh"),
    'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"; md5sum "$INPUT_FILE_PATH"\n',
  );
});

// --- the pieces -------------------------------------------------------------------------------

function program() {
  const p = new Command("scar").exitOverride().enablePositionalOptions();
  addTargetOption(addFunctionDefOptions(p.command("init").argument("[image]").option("-f, --conf-file <f>")));
  p.command("run")
    .argument("[args...]")
    .option("--ib, --input-bucket <p>")
    .option("--time <t>")
    .passThroughOptions();
  p.command("log").option("--ls, --log-stream-name <s>").option("--ri, --request-id <id>");
  return p;
}

test("SCAR's multi-letter flags and older spellings are rewritten before parsing, not container arguments", () => {
  const p = program();
  assert.deepEqual(rewriteScarFlags(p, ["init", "-le", "A=1", "-tt", "5", "-pf", "x", "img"]), [
    "init",
    "--le",
    "A=1",
    "--tt",
    "5",
    "--pf",
    "x",
    "img",
  ]);
  assert.deepEqual(rewriteScarFlags(p, ["init", "--conf_file", "a.yaml", "--timeout_threshold=3"]), [
    "init",
    "--conf-file",
    "a.yaml",
    "--timeout-threshold=3",
  ]);
  // A value that looks like a flag stays a value.
  assert.deepEqual(rewriteScarFlags(p, ["log", "-ls", "-ri"]), ["log", "--ls", "-ri"]);
  // After the first operand of run, everything is the container's.
  assert.deepEqual(rewriteScarFlags(p, ["run", "-ib", "b/in", "fn", "ls", "-ls", "-ib"]), [
    "run",
    "--ib",
    "b/in",
    "fn",
    "ls",
    "-ls",
    "-ib",
  ]);
  assert.deepEqual(rewriteScarFlags(p, ["run", "--time", "30"]), ["run", "--time", "30"]);
  assert.deepEqual(rewriteScarFlags(p, ["nosuchcommand", "-db"]), ["nosuchcommand", "-db"]);
});

test("function flags become the command-line layer in SCAR's FDL shape, only the keys given", () => {
  const f = {
    environment: ["A=1=2", "B="],
    lambdaEnvironment: ["L=x"],
    layers: ["arn:layer:1"],
    memory: "256",
    timeout: "sixty",
    timeoutThreshold: "5",
    logLevel: "debug",
    executionMode: "batch",
    supervisorVersion: "1.5.8",
    iamRole: "arn:aws:iam::123456789012:role/r",
    batchVcpus: "2",
    enableGpu: true,
    apiGatewayName: "api",
    eventSource: "bkt",
    outputBucket: "other/out",
    profile: "prof",
  };
  assert.deepEqual(awsOverrides(f), {
    lambda: {
      memory: 256,
      timeout: "sixty", // left as written so the FDL check names it
      log_level: "DEBUG",
      layers: ["arn:layer:1"],
      execution_mode: "batch",
      boto_profile: "prof",
      supervisor: { version: "1.5.8" },
      environment: { Variables: { L: "x" } },
      container: { timeout_threshold: 5, environment: { Variables: { A: "1=2", B: "" } } },
      input: [{ storage_provider: "s3", path: "bkt/input" }],
      output: [{ storage_provider: "s3", path: "other/out" }],
    },
    iam: { role: "arn:aws:iam::123456789012:role/r" },
    batch: { vcpus: 2, enable_gpu: true },
    api_gateway: { name: "api" },
  });
  assert.deepEqual(awsOverrides({ environment: [], lambdaEnvironment: [], layers: [] }), { lambda: {} });
  assert.equal(nameFromImage("grycap/cowsay"), "scar-grycap-cowsay");
  assert.equal(nameFromImage("ubuntu:16.04"), "scar-ubuntu-16-04");
  assert.equal(
    nameFromImage("registry.example.org:5000/Team/App:1.2"),
    "scar-registry-example-org-5000-team-app-1-2",
  );
});

// --- the flags, end to end --------------------------------------------------------------------

test("scar init with every function-definition flag: each lands in the deployed function", async () => {
  const out = await ok([
    "init",
    "-n",
    "flags-fn",
    "-d",
    "all the flags",
    "-e",
    "A=1=2",
    "-le",
    "L=lambda-only",
    "-m",
    "256",
    "-t",
    "60",
    "-tt",
    "5",
    "-ll",
    "debug",
    "-ib",
    "flags-in/data",
    "-ob",
    "flags-out/results",
    "-em",
    "lambda-batch",
    "-bm",
    "512",
    "-bc",
    "2",
    "-s",
    "echo.sh",
    "-api",
    "flags-api",
    // aws-only settings are accepted and kept for the aws target
    "-r",
    "arn:aws:iam::123456789012:role/scar",
    "-sv",
    "1.5.8",
    "-rt",
    "image",
    "-l",
    "arn:aws:lambda:us-east-1:123456789012:layer:x:1",
    "-pf",
    "default",
    "-db",
    "deploy-bucket",
    "test/busybox",
  ]);
  assert.match(out, /^Function 'flags-fn' successfully created\.$/m);
  assert.match(out, /^Files uploaded to 'flags-in\/data' run 'flags-fn'\.$/m);
  assert.match(out, /^Its results go to 'flags-out\/results'\.$/m);
  const s = await service("flags-fn");
  assert.equal(s.memory, "256Mi");
  assert.equal(s.log_level, "DEBUG");
  assert.deepEqual(s.environment.variables, { A: "1=2" });
  assert.equal(s.input[0].path, "flags-in/data");
  assert.equal(s.output[0].path, "flags-out/results");
  assert.equal(s.scar.timeout, 60);
  assert.equal(s.scar.timeout_threshold, 5);
  assert.equal(s.scar.execution_mode, "lambda-batch");
  assert.deepEqual(s.scar.batch, { vcpus: 2, memory: 512, enable_gpu: false });
  assert.equal(s.scar.api_gateway, "flags-api");
  assert.equal(s.scar.description, "all the flags");
  const run = await ok(["run", "--once", "flags-fn"]);
  assert.match(run, /^A=1=2$/m);
  assert.deepEqual(
    (await ok(["ls", "-b", "flags-in"])).trim().split("\n"),
    ["data/"],
    "-ib created the bucket and its folder",
  );
});

test("scar init --json; -if (an image file); -ph (preheat)", async () => {
  const doc = JSON.parse(
    await ok(["init", "--json", "-n", "from-file", "-if", "image.tar", "-ph"]).then((o) => o.split("\n")[0]!),
  );
  assert.equal(doc.LambdaOutput.FunctionName, "from-file");
  assert.equal(doc.LambdaOutput.FunctionArn, "arn:scar:lambda:local:function:from-file");
  assert.equal(doc.LambdaOutput.MemorySize, 512);
  assert.equal(doc.LambdaOutput.Timeout, 300);
  assert.equal(doc.LambdaOutput.Image, "scar-local/from-file:latest");
  assert.match(await ok(["run", "from-file"]), /^from the image file$/m);
  // The preheat run is the function's first job.
  const jobs = JSON.parse(await ok(["jobs", "ls", "-n", "from-file", "--json"])).jobs;
  assert.equal(jobs.length, 2);
  const plain = await ok(["init", "-n", "preheated", "-ph", "-s", "echo.sh", "test/busybox"]);
  assert.match(plain, /^Preheating function\nPreheating successful$/m);
});

test("older spellings: --conf_file, --time, --async; the SCAR 2.x -bf folder of ls/put/get", async () => {
  writeFileSync(
    join(dir, "two.yaml"),
    "functions:\n  aws:\n  - lambda:\n      name: two-a\n      init_script: copy.sh\n      container:\n        image: test/busybox\n      input:\n      - storage_provider: s3\n        path: two/in\n      output:\n      - storage_provider: s3\n        path: two/out\n  - lambda:\n      name: two-b\n      container:\n        image: test/busybox\n",
  );
  assert.match(await ok(["init", "--conf_file", "two.yaml", "--time", "30"]), /two-a[\s\S]*two-b/);
  assert.equal((await service("two-a")).scar.timeout, 30);
  assert.match(await ok(["run", "--async", "-n", "two-b"]), /launched correctly/);
  writeFileSync(join(dir, "x.txt"), "x");
  await ok(["put", "-b", "two", "-bf", "in", "-p", "x.txt"]);
  assert.deepEqual((await ok(["ls", "-b", "two", "-bf", "in"])).trim().split("\n"), ["in/", "in/x.txt"]);
});

test("a multi-function FDL without a terminal: run, log and invoke ask for -n; update -f and rm -f act on all", async () => {
  const r = await scar(["run", "-f", "two.yaml"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /two\.yaml defines 2 functions \(two-a, two-b\); say which with -n NAME/);
  assert.match(await ok(["run", "-f", "two.yaml", "-n", "two-b", "/bin/echo", "picked"]), /^picked$/m);
  // On a terminal: SCAR's chooser, then its question about the input bucket (answers typed ahead kept).
  const tty = execFileSync("script", ["-qec", `${bin} run -f two.yaml --wait`, "/dev/null"], {
    cwd: dir,
    env: { ...process.env, SCAR_CONFIG_FOLDER: cfgDir },
    input: "1\nY\n",
    encoding: "utf8",
  });
  assert.match(tty, /Please choose a function:\r?\n1\) two-a\r?\n2\) two-b/);
  assert.match(tty, /Do you want to launch the function using the files in 'two\/in'\? \[Y\/n\]/);
  assert.match(tty, /1 jobs: 1 succeeded, 0 failed/);
  const upd = await ok(["update", "-f", "two.yaml", "-m", "1024"]);
  assert.match(upd, /^Function 'two-a' successfully updated\.\nFunction 'two-b' successfully updated\.$/m);
  assert.equal((await service("two-b")).memory, "1024Mi");
  const rm = await ok(["rm", "-f", "two.yaml", "--json"]);
  assert.deepEqual(
    rm
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l)),
    [
      { LambdaOutput: { FunctionName: "two-a", Deleted: true } },
      { LambdaOutput: { FunctionName: "two-b", Deleted: true } },
    ],
  );
});

test("scar put/get of a 40 MiB file (multipart) and a folder with a progress line on a terminal", async () => {
  const big = Buffer.alloc(40 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
  writeFileSync(join(dir, "big.bin"), big);
  await ok(["put", "-b", "large/in", "-p", "big.bin"]);
  await ok(["get", "-b", "large/in/big.bin", "-p", "back"]);
  assert.equal(sha(readFileSync(join(dir, "back/in/big.bin"))), sha(big));
  // On a terminal: one redrawn progress line instead of a line per file.
  mkdirSync(join(dir, "many"));
  for (let i = 0; i < 20; i++) writeFileSync(join(dir, "many", `f${i}.txt`), `${i}`);
  const tty = execFileSync("script", ["-qec", `${bin} put -b large/many -p many`, "/dev/null"], {
    cwd: dir,
    env: { ...process.env, SCAR_CONFIG_FOLDER: cfgDir },
    encoding: "utf8",
  });
  assert.match(tty, /\r\x1b\[Kuploading to 'large\/many': \d+\/20/);
  assert.match(tty, /uploaded 20 files to 'large\/many'/);
  assert.doesNotMatch(tty, /Uploading file/);
});

test("scar log --follow prints each new invocation's log as it ends, until Ctrl-C", async () => {
  const child = spawn(bin, ["log", "--follow", "-n", "preheated"], {
    cwd: dir,
    env: { ...process.env, SCAR_CONFIG_FOLDER: cfgDir },
  });
  let out = "";
  child.stdout.on("data", (b) => {
    out += b;
  });
  const exited = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
  const starts = () => out.match(/^START RequestId/gm)?.length ?? 0;
  for (let i = 0; i < 100 && starts() < 1; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(starts(), 1, "the preheat run's log first");
  await ok(["run", "-n", "preheated", "/bin/echo", "followed"]);
  for (let i = 0; i < 100 && starts() < 2; i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(out, /^followed$/m);
  child.kill("SIGINT");
  assert.equal(await exited, 0);
});

test("scar run -o FILE saves OSCAR's answer (the one output file, or a zip of several); without -o the logs show", async () => {
  writeFileSync(
    join(dir, "one.sh"),
    'echo "making one"\nprintf "\\001\\002bytes" > "$TMP_OUTPUT_DIR/result.bin"\n',
  );
  writeFileSync(
    join(dir, "two.sh"),
    'echo "making two"\necho a > "$TMP_OUTPUT_DIR/a.txt"\nmkdir -p "$TMP_OUTPUT_DIR/sub"\necho b > "$TMP_OUTPUT_DIR/sub/b.txt"\n',
  );
  await ok(["init", "-n", "one-out", "-s", "one.sh", "test/busybox"]);
  await ok(["init", "-n", "two-out", "-s", "two.sh", "test/busybox"]);
  assert.match(await ok(["run", "one-out"]), /^making one$/m);
  assert.equal(await ok(["run", "-o", "one.out", "one-out"]), "Output saved in file 'one.out'\n");
  assert.deepEqual(readFileSync(join(dir, "one.out")), Buffer.from("\u0001\u0002bytes"));
  await ok(["run", "-o", "two.zip", "two-out"]);
  const listing = execFileSync("unzip", ["-Z1", join(dir, "two.zip")], { encoding: "utf8" });
  assert.deepEqual(listing.trim().split("\n").sort(), ["a.txt", "sub/b.txt"]);
  await ok(["rm", "-n", "one-out"]);
  await ok(["rm", "-n", "two-out"]);
});

test("scar rm -a deletes every function and keeps their buckets", async () => {
  const out = await ok(["rm", "-a"]);
  assert.match(out, /^Function 'flags-fn' successfully deleted\.$/m);
  assert.match(out, /^Function 'from-file' successfully deleted\.$/m);
  assert.deepEqual(JSON.parse(await ok(["ls", "--json"])).Functions, []);
  assert.match(await ok(["ls", "-b", "large/in"]), /^in\/big\.bin$/m);
  const none = await scar(["rm"]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /one of -n NAME, -a \(all\) or -f FDL/);
});
