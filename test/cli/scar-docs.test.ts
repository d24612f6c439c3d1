/**
 * Every command line of SCAR's documentation, run with the real `scar` binary against a real engine
 * (started in the background by the first command, as a user's would be). The images are busybox
 * root file systems built here and imported under the names the documentation uses.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { waitFor as pollFor } from "../engine/api-harness.js";
import { busyboxRootfs } from "../engine/images/helpers.js";
import { useCliWorkspace } from "./harness.js";

const { dir, cfgDir, dataDir, scar, ok, importImage } = useCliWorkspace("scar-docs-", { target: "local" });

function write(path: string, text: string, mode = 0o644) {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, text);
  chmodSync(path, mode);
}

/** A busybox root file system with a fake cowsay, fortune and perl where the cowsay image has them. */
function rootfs(path: string, extra: (root: string) => void = () => {}) {
  busyboxRootfs(path, ["sh", "echo", "cat", "env", "sort", "wc", "basename", "ls", "sleep", "tr", "grep"]);
  for (const d of ["usr/games", "usr/bin"]) mkdirSync(join(path, d), { recursive: true });
  extra(path);
}

/** Every poll is a `scar` command: every 200 ms, for 30 s at the most. */
const waitFor = <T>(what: string, fn: () => Promise<T | undefined>) => pollFor(what, fn, 30_000, 200);

const keysUnder = async (path: string) => (await ok(["ls", "-b", path])).split("\n").filter(Boolean);

before(async () => {
  const cow = join(dir, "img-cowsay");
  rootfs(cow, (r) => {
    write(
      join(r, "usr/games/cowsay"),
      '#!/bin/sh\nmsg="$*"; [ -n "$msg" ] || msg="$(cat)"\necho " ___"\necho "< $msg >"\necho " ---"\necho "        \\\\   ^__^"\n',
      0o755,
    );
    write(join(r, "usr/games/fortune"), "#!/bin/sh\necho 'You will be fortunate.'\n", 0o755);
    // `/usr/bin/perl /usr/games/cowsay Hello World`: a shell stands in for perl.
    write(join(r, "usr/bin/perl"), '#!/bin/sh\nexec /bin/sh "$@"\n', 0o755);
  });
  await importImage(cow, "grycap/cowsay", [
    "ENV PATH=/usr/games:/usr/bin:/bin",
    'CMD ["/bin/sh", "-c", "/usr/games/fortune | /usr/games/cowsay"]',
  ]);
  const ubuntu = join(dir, "img-ubuntu");
  rootfs(ubuntu, (r) =>
    write(join(r, "etc/os-release"), 'NAME="Ubuntu"\nVERSION="16.04 LTS (Xenial Xerus)"\n'),
  );
  await importImage(ubuntu, "ubuntu:16.04", ["ENV PATH=/bin"]);
  await importImage(ubuntu, "repo/image:latest", ["ENV PATH=/bin"]);
  const darknet = join(dir, "img-darknet");
  rootfs(darknet, (r) =>
    write(join(r, "usr/bin/darknet"), '#!/bin/sh\necho "$(basename "$3"): dog: 99%, bicycle: 98%"\n', 0o755),
  );
  await importImage(darknet, "grycap/darknet", ["ENV PATH=/usr/bin:/bin"]);

  write(join(dir, "test/test-cowsay.sh"), '/usr/games/cowsay "Executing a run script"\n');
  write(
    join(dir, "test/test-env.sh"),
    '. /etc/os-release\necho "$NAME $VERSION"\necho "REQUEST_ID=$REQUEST_ID"\n',
  );
  write(join(dir, "test/test-global-vars.sh"), 'echo "TEST1=$TEST1 TEST2=$TEST2"\n');
  write(
    join(dir, "user-defined-script.sh"),
    'wc -c < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").size"\necho "measured $STORAGE_OBJECT_KEY"\n',
  );
  write(
    join(dir, "yolo.sh"),
    'name=$(basename "$INPUT_FILE_PATH")\ndarknet detector test "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$name.out"\necho "detected objects in $name"\n',
  );
  write(
    join(dir, "darknet.yaml"),
    [
      "functions:",
      "  aws:",
      "  - lambda:",
      "      name: scar-darknet-cpu",
      "      memory: 2048",
      "      init_script: yolo.sh",
      "      container:",
      "        image: grycap/darknet",
      "      input:",
      "      - storage_provider: s3",
      "        path: scar-video/input",
      "      output:",
      "      - storage_provider: s3",
      "        path: scar-video/output",
      "",
    ].join("\n"),
  );
  write(join(dir, "seq1.avi"), "RIFF....AVI fake video\n");
});

let firstRequest = { id: "", stream: "" };

test("scar init -n lambda-docker-cowsay -m 128 -t 300 grycap/cowsay (starts the engine in the background)", async () => {
  const r = await scar(["init", "-n", "lambda-docker-cowsay", "-m", "128", "-t", "300", "grycap/cowsay"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "Function 'lambda-docker-cowsay' successfully created.\n");
  assert.match(r.stderr, /Starting the local engine in the background \(data folder .*\/data\)/);
  assert.match(
    r.stderr,
    /Local engine started: API http:\/\/127\.0\.0\.1:\d+, object store http:\/\/127\.0\.0\.1:\d+/,
  );
  const again = await scar(["init", "-n", "lambda-docker-cowsay", "grycap/cowsay"]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /^error: Function 'lambda-docker-cowsay' already exists$/m);
  assert.match(again.stderr, /^hint: .*scar update/m);
});

test("scar run lambda-docker-cowsay: request id, log group, log stream, then the container's output", async () => {
  const out = await ok(["run", "lambda-docker-cowsay"]);
  const m =
    /^Request Id: ([0-9a-f-]{36})\nLog Group Name: \/aws\/lambda\/lambda-docker-cowsay\nLog Stream Name: (\d{4}\/\d\d\/\d\d\/\[\$LATEST\][0-9a-f]{32})\n/.exec(
      out,
    );
  assert.ok(m, out);
  assert.match(out, /< You will be fortunate\. >/);
  firstRequest = { id: m[1]!, stream: m[2]! };
});

test("scar log lambda-docker-cowsay, with -ls, -ri, and both", async () => {
  await ok(["run", "lambda-docker-cowsay"]); // a second request, which the filters must leave out
  const all = await ok(["log", "lambda-docker-cowsay"]);
  assert.equal(all.match(/^START RequestId: /gm)?.length, 2, all);
  assert.match(all, new RegExp(`^END RequestId: ${firstRequest.id}$`, "m"));
  assert.match(all, new RegExp(`^REPORT RequestId: ${firstRequest.id}\\tDuration: [\\d.]+ ms`, "m"));
  for (const args of [
    ["-ls", firstRequest.stream],
    ["-ri", firstRequest.id],
    ["-ls", firstRequest.stream, "-ri", firstRequest.id],
  ]) {
    const one = await ok(["log", "lambda-docker-cowsay", ...args]);
    assert.equal(one.match(/^START RequestId: /gm)?.length, 1, `${args.join(" ")}:\n${one}`);
    assert.match(one, new RegExp(`^START RequestId: ${firstRequest.id} `, "m"));
    assert.match(one, /< You will be fortunate\. >/);
  }
  const none = await scar(["log", "lambda-docker-cowsay", "-ri", "no-such-request"]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no request 'no-such-request' of function 'lambda-docker-cowsay'/);
});

test("scar rm -n lambda-docker-cowsay; a second rm says it is not there and exits 1", async () => {
  assert.equal(
    await ok(["rm", "-n", "lambda-docker-cowsay"]),
    "Function 'lambda-docker-cowsay' successfully deleted.\n",
  );
  const again = await scar(["rm", "-n", "lambda-docker-cowsay"]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /Unable to find the function 'lambda-docker-cowsay'/);
  const run = await scar(["run", "lambda-docker-cowsay"]);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^error: Unable to find the function 'lambda-docker-cowsay'$/m);
  await ok(["init", "-n", "lambda-docker-cowsay", "-m", "128", "-t", "300", "grycap/cowsay"]);
});

test("scar run -s test/test-cowsay.sh lambda-docker-cowsay", async () => {
  const out = await ok(["run", "-s", "test/test-cowsay.sh", "lambda-docker-cowsay"]);
  assert.match(out, /< Executing a run script >/);
});

test("scar init -s test/test-env.sh -n lambda-test-init-script ubuntu:16.04; scar run lambda-test-init-script", async () => {
  await ok(["init", "-s", "test/test-env.sh", "-n", "lambda-test-init-script", "ubuntu:16.04"]);
  const out = await ok(["run", "lambda-test-init-script"]);
  assert.match(out, /^Ubuntu 16\.04 LTS \(Xenial Xerus\)$/m);
  const id = /^Request Id: (\S+)$/m.exec(out)?.[1];
  assert.match(out, new RegExp(`^REQUEST_ID=${id}$`, "m"));
});

test("scar run -e TEST1=45 -e TEST2=69 -s test/test-global-vars.sh lambda-docker-cowsay ('=' in values kept)", async () => {
  const out = await ok([
    "run",
    "-e",
    "TEST1=45",
    "-e",
    "TEST2=69",
    "-s",
    "test/test-global-vars.sh",
    "lambda-docker-cowsay",
  ]);
  assert.match(out, /^TEST1=45 TEST2=69$/m);
  const eq = await ok(["run", "-e", "TEST1=a=b", "-s", "test/test-global-vars.sh", "lambda-docker-cowsay"]);
  assert.match(eq, /^TEST1=a=b TEST2=$/m);
  const bad = await scar(["run", "-e", "NOVALUE", "lambda-docker-cowsay"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /-e expects VAR=value, not 'NOVALUE'/);
});

test("scar run lambda-docker-cowsay /usr/games/fortune; ... /usr/bin/perl /usr/games/cowsay Hello World", async () => {
  const fortune = await ok(["run", "lambda-docker-cowsay", "/usr/games/fortune"]);
  assert.match(fortune, /\nYou will be fortunate\.\n$/);
  assert.doesNotMatch(fortune, /\^__\^/);
  const hello = await ok([
    "run",
    "lambda-docker-cowsay",
    "/usr/bin/perl",
    "/usr/games/cowsay",
    "Hello",
    "World",
  ]);
  assert.match(hello, /^< Hello World >$/m);
  // Flags after the name belong to the container (SCAR's REMAINDER), even ones scar knows.
  const dashed = await ok(["run", "lambda-docker-cowsay", "/usr/games/cowsay", "-a", "-ls"]);
  assert.match(dashed, /^< -a -ls >$/m);
});

test("scar run --json lambda-docker-cowsay; -a; -o FILE", async () => {
  const doc = JSON.parse(await ok(["run", "--json", "lambda-docker-cowsay"]));
  assert.equal(doc.LambdaOutput.StatusCode, 200);
  assert.match(doc.LambdaOutput.Payload, /< You will be fortunate\. >/);
  assert.equal(doc.LambdaOutput.LogGroupName, "/aws/lambda/lambda-docker-cowsay");
  assert.match(doc.LambdaOutput.RequestId, /^[0-9a-f-]{36}$/);
  const async = await ok(["run", "-a", "lambda-docker-cowsay"]);
  assert.match(async, /^Request Id: [0-9a-f-]{36}\nFunction 'lambda-docker-cowsay' launched correctly\n$/);
  const file = join(dir, "cow.txt");
  assert.equal(await ok(["run", "-o", file, "lambda-docker-cowsay"]), `Output saved in file '${file}'\n`);
  assert.match(readFileSync(file, "utf8"), /< You will be fortunate\. >/);
});

test("a failing script: the output is shown, the exit code is 1, and the hint names the log", async () => {
  write(join(dir, "fail.sh"), "echo about to fail\nexit 3\n");
  const r = await scar(["run", "-s", "fail.sh", "lambda-docker-cowsay"]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^about to fail$/m);
  const id = /^Request Id: (\S+)$/m.exec(r.stdout)?.[1];
  assert.match(r.stderr, new RegExp(`hint: see its log: scar log -n lambda-docker-cowsay -ri ${id}`));
  // The engine's own log (scar engine logs) names failed jobs.
  const engineLog = await ok(["engine", "logs", "--lines", "200"]);
  assert.match(
    engineLog,
    new RegExp(`job ${id} of 'lambda-docker-cowsay' failed: script-error \\(exit code 3\\)`),
  );
  assert.match(engineLog, /deployed 'lambda-docker-cowsay' \(image grycap\/cowsay, sha256:/);
});

test("scar init -s user-defined-script.sh -n lambda-function-name -es bucket-name repo/image:latest; scar run -es bucket-name lambda-function-name", async () => {
  await ok([
    "init",
    "-s",
    "user-defined-script.sh",
    "-n",
    "lambda-function-name",
    "-es",
    "bucket-name",
    "repo/image:latest",
  ]);
  assert.deepEqual(await keysUnder("bucket-name"), ["input/", "output/"]);
  // Uploads trigger the function; sub-folders are kept (SCAR flattened them).
  write(join(dir, "files/a.txt"), "12345");
  write(join(dir, "files/sub/b.txt"), "1234567890");
  const put = await ok(["put", "-b", "bucket-name/input", "-p", "files"]);
  assert.match(
    put,
    /^Uploading file '.*\/files\/sub\/b\.txt' to bucket 'bucket-name' with key 'input\/sub\/b\.txt'\.$/m,
  );
  await waitFor("two results", async () => {
    const keys = await keysUnder("bucket-name/output");
    return keys.length === 3 ? keys : undefined;
  });
  assert.deepEqual(await keysUnder("bucket-name/output"), [
    "output/",
    "output/a.txt.size",
    "output/b.txt.size",
  ]);
  // The event launcher sends one S3 event per file (with eventTime, which SCAR forgot).
  rmSync(join(dir, "files"), { recursive: true });
  const run = await ok(["run", "-es", "bucket-name", "lambda-function-name"]);
  assert.match(run, /^Files found: '\["input\/a\.txt","input\/sub\/b\.txt"\]'$/m);
  assert.match(run, /^Sending event for file 'input\/a\.txt'$/m);
  assert.match(run, /^Sending event for file 'input\/sub\/b\.txt'$/m);
  const summary = await ok(["run", "--wait", "--json", "-ib", "bucket-name/input", "lambda-function-name"]);
  const s = JSON.parse(summary);
  assert.equal(s.Jobs, 2);
  assert.equal(s.Succeeded, 2);
  assert.equal(s.Failed, 0);
  assert.equal(typeof s.P50Seconds, "number");
  const log = await ok(["log", "-n", "lambda-function-name"]);
  assert.match(log, /measured input\/sub\/b\.txt/);
});

test("scar get -b bucket-name/output -p DIR: keys become paths; existing files are kept unless --overwrite", async () => {
  const out = join(dir, "downloaded");
  const got = await ok(["get", "-b", "bucket-name/output", "-p", out]);
  assert.match(
    got,
    /^Downloading file 'output\/a\.txt\.size' from bucket 'bucket-name' in path '.*downloaded'\.$/m,
  );
  assert.equal(readFileSync(join(out, "output/a.txt.size"), "utf8").trim(), "5");
  assert.equal(readFileSync(join(out, "output/b.txt.size"), "utf8").trim(), "10");
  writeFileSync(join(out, "output/a.txt.size"), "mine");
  const again = await scar(["get", "-b", "bucket-name/output", "-p", out]);
  assert.equal(again.code, 0);
  assert.match(again.stderr, /kept 2 local files that already existed \(--overwrite replaces them\)/);
  assert.equal(readFileSync(join(out, "output/a.txt.size"), "utf8"), "mine");
  const json = JSON.parse(await ok(["get", "--overwrite", "--json", "-b", "bucket-name/output", "-p", out]));
  assert.equal(json.Downloaded.length, 2);
  assert.equal(readFileSync(join(out, "output/a.txt.size"), "utf8").trim(), "5");
});

test("scar init -f darknet.yaml; scar run -f darknet.yaml; scar put -b scar-video/input -p seq1.avi", async () => {
  const init = await ok(["init", "-f", "darknet.yaml"]);
  assert.match(init, /^Function 'scar-darknet-cpu' successfully created\.$/m);
  // Not a terminal: nobody can answer SCAR's question, so scar neither guesses nor runs anything.
  const refused = await scar(["run", "-f", "darknet.yaml"]);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /'scar-darknet-cpu' has an input bucket \('scar-video\/input'\)/);
  assert.match(refused.stderr, /--yes \(or -ib scar-video\/input\)/);
  assert.match(refused.stderr, /--once/);
  assert.equal(refused.stdout, "");
  assert.deepEqual(await keysUnder("scar-video/output"), ["output/"]);
  // --once: the run the user asked for, with an empty event (SCAR's answer 'n').
  const run = await scar(["run", "--once", "-f", "darknet.yaml"]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^detected objects in event-file-/m);
  const put = await ok(["put", "-b", "scar-video/input", "-p", "seq1.avi"]);
  assert.equal(
    put,
    `Uploading file '${join(dir, "seq1.avi")}' to bucket 'scar-video' with key 'input/seq1.avi'.\n`,
  );
  await waitFor("the detection", async () =>
    (await keysUnder("scar-video/output")).includes("output/seq1.avi.out") ? true : undefined,
  );
  const out = join(dir, "video");
  await ok(["get", "-b", "scar-video/output/seq1.avi.out", "-p", out]);
  assert.equal(readFileSync(join(out, "output/seq1.avi.out"), "utf8"), "seq1.avi: dog: 99%, bicycle: 98%\n");
  // --yes: SCAR's answer 'Y', one event per file of the input bucket.
  const launched = JSON.parse(await ok(["run", "--yes", "--wait", "--json", "-f", "darknet.yaml"]));
  assert.equal(launched.Jobs, 1);
  assert.equal(launched.Succeeded, 1);
});

test("scar ls: SCAR's columns plus status and jobs; --json; -b", async () => {
  const out = await ok(["ls"]);
  const lines = out.split("\n");
  assert.equal(lines[0], "LOCAL FUNCTIONS:");
  assert.match(lines[1]!, /^NAME\s+MEMORY\s+TIME\s+IMAGE_ID\s+API_URL\s+SUPERVISOR_VERSION\s+STATUS\s+JOBS$/);
  assert.match(
    out,
    /^lambda-docker-cowsay\s+128\s+300\s+grycap\/cowsay\s+-\s+-\s+Active\s+\d+ ok, \d+ failed; starts: \d+ cold, \d+ warm$/m,
  );
  assert.match(out, /^scar-darknet-cpu\s+2048\s+300\s+grycap\/darknet\s/m);
  const doc = JSON.parse(await ok(["ls", "--json"]));
  const cow = doc.Functions.find((f: { Name: string }) => f.Name === "lambda-docker-cowsay");
  assert.deepEqual(
    { Memory: cow.Memory, Timeout: cow.Timeout, Image_id: cow.Image_id, Status: cow.Status },
    { Memory: 128, Timeout: 300, Image_id: "grycap/cowsay", Status: "Active" },
  );
  assert.ok(cow.Jobs.succeeded >= 5, JSON.stringify(cow.Jobs));
  const b = JSON.parse(await ok(["ls", "-b", "bucket-name/input", "--json"]));
  assert.deepEqual(
    b.Objects.map((o: { key: string }) => o.key),
    ["input/", "input/a.txt", "input/sub/b.txt"],
  );
  const missing = await scar(["ls", "-b", "no-such-bucket"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Unable to find the bucket 'no-such-bucket'\./);
});

test("scar init IMAGE without -n names the function scar-<image parts>, then -1, -2 when taken", async () => {
  assert.equal(await ok(["init", "grycap/cowsay"]), "Function 'scar-grycap-cowsay' successfully created.\n");
  assert.equal(
    await ok(["init", "grycap/cowsay"]),
    "Function 'scar-grycap-cowsay-1' successfully created.\n",
  );
  assert.equal(
    await ok(["rm", "-n", "scar-grycap-cowsay"]),
    "Function 'scar-grycap-cowsay' successfully deleted.\n",
  );
  await ok(["rm", "-n", "scar-grycap-cowsay-1"]);
});

test("scar update -n: memory, timeout and variables change; jobs stay", async () => {
  const before = JSON.parse(await ok(["ls", "--json"])).Functions.find(
    (f: { Name: string }) => f.Name === "lambda-docker-cowsay",
  );
  assert.equal(
    await ok(["update", "-n", "lambda-docker-cowsay", "-m", "256", "-t", "60", "-e", "TEST1=updated"]),
    "Function 'lambda-docker-cowsay' successfully updated.\n",
  );
  const after = JSON.parse(await ok(["ls", "--json"])).Functions.find(
    (f: { Name: string }) => f.Name === "lambda-docker-cowsay",
  );
  assert.equal(after.Memory, 256);
  assert.equal(after.Timeout, 60);
  assert.ok(after.Jobs.succeeded >= before.Jobs.succeeded);
  assert.match(
    await ok(["run", "-s", "test/test-global-vars.sh", "lambda-docker-cowsay"]),
    /^TEST1=updated TEST2=$/m,
  );
  const missing = await scar(["update", "-n", "nope", "-m", "256"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Unable to find the function 'nope'/);
});

test("scar invoke: a function with an HTTP endpoint (-api), a file (-db), query parameters (-p), async (-a)", async () => {
  write(join(dir, "api.sh"), 'echo "x=$CONT_VAR_x"\necho "input: $(cat "$INPUT_FILE_PATH")"\n');
  const init = await ok(["init", "-n", "api-fn", "-s", "api.sh", "-api", "my-api", "grycap/cowsay"]);
  assert.match(init, /^API endpoint: http:\/\/127\.0\.0\.1:\d+\/invoke\/api-fn$/m);
  write(join(dir, "payload.bin"), "payload bytes\n");
  const out = await ok(["invoke", "-n", "api-fn", "-db", "payload.bin", "-p", '{"x": "7"}']);
  assert.match(
    out,
    /^Request Id: [0-9a-f-]{36}\nLog Group Name: \/aws\/lambda\/api-fn\nLog Stream Name: \S+\n/,
  );
  assert.match(out, /^x=7$/m);
  assert.match(out, /^input: payload bytes$/m);
  const a = await ok(["invoke", "-n", "api-fn", "-a", "-jd", '{"k": 1}']);
  assert.match(a, /^Request Id: [0-9a-f-]{36}\nFunction 'api-fn' launched correctly\n$/);
  const none = await scar(["invoke", "-n", "lambda-docker-cowsay"]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /Error retrieving API ID for lambda function 'lambda-docker-cowsay'/);
  await ok(["rm", "-n", "api-fn"]);
});

test("scar jobs ls / show: job records with stage times", async () => {
  const list = JSON.parse(await ok(["jobs", "ls", "-n", "lambda-function-name", "--json"]));
  assert.ok(list.jobs.length >= 4);
  const job = list.jobs[0];
  const shown = await ok(["jobs", "show", job.id]);
  assert.match(shown, new RegExp(`^request id: +${job.id}$`, "m"));
  assert.match(shown, /^function: +lambda-function-name$/m);
  assert.match(shown, /^ {2}container_start +\d+$/m);
  const table = await ok(["jobs", "ls", "-n", "lambda-function-name"]);
  assert.match(
    table.split("\n")[0]!,
    /^REQUEST ID\s+FUNCTION\s+STATUS\s+REASON\s+TRIGGER\s+QUEUED\s+MS\s+START$/,
  );
});

test("errors: bad FDL (file:line:column, exit 1), no image (exit 2), missing upload path, unknown target", async () => {
  write(
    join(dir, "bad.yaml"),
    "functions:\n  aws:\n  - lambda:\n      name: bad-fn\n      memory: lots\n      container:\n        image: grycap/cowsay\n",
  );
  const fdl = await scar(["init", "-f", "bad.yaml"]);
  assert.equal(fdl.code, 1);
  assert.match(fdl.stderr, /bad\.yaml:5:\d+/);
  assert.match(fdl.stderr, /memory/);
  assert.match(fdl.stderr, /nothing was changed/);
  const flag = await scar(["init", "-n", "bad-flag", "-m", "lots", "grycap/cowsay"]);
  assert.equal(flag.code, 1);
  assert.match(flag.stderr, /command line/);
  const noImage = await scar(["init", "-n", "x"]);
  assert.equal(noImage.code, 2);
  assert.match(noImage.stderr, /needs an image/);
  const put = await scar(["put", "-b", "bucket-name/input", "-p", "no-such-file"]);
  assert.equal(put.code, 1);
  assert.match(put.stderr, /Unable to find the file to upload with path 'no-such-file'/);
  const target = await scar(["ls", "--target", "gcp"]);
  assert.equal(target.code, 1);
  assert.match(target.stderr, /unknown target 'gcp' \(from --target\)/);
  // aws is a target: without credentials it says how to give them, in one line and a hint
  const aws = await scar(["ls", "--target", "aws"], {
    AWS_ACCESS_KEY_ID: "",
    AWS_SECRET_ACCESS_KEY: "",
    AWS_PROFILE: "",
    AWS_SHARED_CREDENTIALS_FILE: "/nonexistent",
    AWS_CONFIG_FILE: "/nonexistent",
    AWS_EC2_METADATA_DISABLED: "true",
  });
  assert.equal(aws.code, 1);
  assert.match(aws.stderr, /^error: listing functions failed: .*\nhint: give AWS credentials/);
  assert.doesNotMatch(aws.stderr, /\n\s+at /, "no stack trace");
  const env = await scar(["ls"], { SCAR_TARGET: "oscar:nowhere" });
  assert.equal(env.code, 1);
  assert.match(env.stderr, /no OSCAR cluster 'nowhere' in scar\.cfg/);
  const none = await scar([]);
  assert.equal(none.code, 2, "no command is a wrong command line");
});

test("the oscar:<cluster> target: the same client against a cluster configured in scar.cfg", async () => {
  const info = JSON.parse(readFileSync(join(dataDir, "engine.json"), "utf8"));
  const creds = JSON.parse(readFileSync(join(dataDir, "credentials"), "utf8"));
  const cfg = JSON.parse(readFileSync(join(cfgDir, "scar.cfg"), "utf8"));
  cfg.oscar = {
    lab: { endpoint: info.api, auth_user: creds.admin.user, auth_password: creds.admin.password },
  };
  writeFileSync(join(cfgDir, "scar.cfg"), JSON.stringify(cfg));
  const out = await ok(["ls", "--target", "oscar:lab"]);
  assert.match(out, /^OSCAR SERVICES - OSCAR cluster 'lab' at http:\/\/127\.0\.0\.1:\d+:$/m);
  assert.match(out, /^lambda-docker-cowsay\s/m);
  assert.match(
    await ok(["run", "lambda-docker-cowsay"], { SCAR_TARGET: "oscar:lab" }),
    /< You will be fortunate\. >/,
  );
  cfg.oscar.lab.auth_password = "wrong";
  writeFileSync(join(cfgDir, "scar.cfg"), JSON.stringify(cfg));
  const denied = await scar(["ls", "--target", "oscar:lab"]);
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /credentials were refused/);
});

test("scar engine status / stop, and the next command starts it again", async () => {
  const status = await ok(["engine", "status"]);
  assert.match(status, /^running \(pid \d+/);
  const dashboard = /^ {2}dashboard: +(http:\S+\/ui\/) /m.exec(status)?.[1];
  assert.ok(dashboard, status);
  const page = await fetch(dashboard);
  assert.equal(page.status, 200, "the dashboard's page is served where status says");
  assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
  assert.equal(await ok(["engine", "stop"]), "stopped\n");
  const down = await scar(["engine", "status"]);
  assert.equal(down.code, 3);
  assert.match(down.stdout, /^not running/);
  const ls = await scar(["ls"]);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stderr, /Starting the local engine in the background/);
  assert.match(ls.stdout, /^lambda-docker-cowsay\s/m); // deployed functions survive a restart
  assert.ok(existsSync(join(dataDir, "engine.log")));
});

test("scar --help lists SCAR's commands; SCAR's multi-letter flags show as SCAR writes them", async () => {
  const help = await ok(["--help"]);
  for (const c of [
    "init",
    "run",
    "invoke",
    "ls",
    "rm",
    "log",
    "put",
    "get",
    "update",
    "serve",
    "engine",
    "jobs",
  ])
    assert.match(help, new RegExp(`^  ${c} `, "m"));
  const init = await ok(["init", "--help"]);
  for (const f of [
    "-if, --image-file",
    "-ph, --preheat",
    "-db, --deployment-bucket",
    "-le, --lambda-environment",
    "-es, --event-source",
  ])
    assert.ok(init.includes(f), f);
  assert.ok((await ok(["log", "--help"])).includes("-ri, --request-id"));
});

test("scar completion bash: a script bash accepts, completing commands and flags", async () => {
  const script = await ok(["completion", "bash"]);
  write(join(dir, "complete.sh"), script);
  const r = await new Promise<string>((resolve, reject) =>
    execFile(
      "bash",
      [
        "-c",
        `source ${join(dir, "complete.sh")}; COMP_WORDS=(scar lo); COMP_CWORD=1; _scar; echo "\${COMPREPLY[@]}"; COMP_WORDS=(scar log -r); COMP_CWORD=2; _scar; echo "\${COMPREPLY[@]}"`,
      ],
      (err, stdout) => (err ? reject(err) : resolve(stdout)),
    ),
  );
  const [cmds, flags] = r.trim().split("\n");
  assert.equal(cmds, "log");
  assert.equal(flags, "-ri");
  assert.match(await ok(["completion", "zsh"]), /bashcompinit/);
});
