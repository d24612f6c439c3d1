/**
 * What a user meets in the first hour, with the real `scar` binary against a real engine: removing
 * a function whose FDL's script is gone, its logs after `scar rm`, removing an image a function
 * uses, dead letters with their error, an upload into a new bucket without library warnings, an
 * unreachable registry, an unknown target on every command, and the exit code of a wrong command line.
 */
import assert from "node:assert/strict";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { waitFor as pollFor } from "../engine/api-harness.js";
import { busyboxRootfs } from "../engine/images/helpers.js";
import { useCliWorkspace } from "./harness.js";

const { dir, dataDir, scar, ok, importImage } = useCliWorkspace("scar-first-hour-", { target: "local" });

const waitFor = <T>(what: string, fn: () => Promise<T | undefined>) => pollFor(what, fn, 60_000, 200);

/** Every line of stderr that is a library's or node's warning rather than scar's own words. */
function libraryWarnings(stderr: string): string[] {
  return stderr
    .split("\n")
    .filter((l) => /warning|deprecat|@aws-sdk|lib-storage|ExperimentalWarning|\(node:\d+\)/i.test(l));
}

function fdl(name: string, script: string, lambdaExtra = ""): string {
  return `functions:
  aws:
  - lambda:
      name: ${name}
      init_script: ${script}
${lambdaExtra}      container:
        image: scar-test/busybox
`;
}

before(async () => {
  const root = join(dir, "rootfs");
  busyboxRootfs(root, ["sh", "echo", "cat", "true"]);
  await importImage(root, "scar-test/busybox", ["ENV PATH=/bin"]);
});

test("scar rm -f removes the functions of an FDL whose script file is gone", async () => {
  const script = join(dir, "gone.sh");
  writeFileSync(script, "echo hi\n");
  writeFileSync(join(dir, "gone.yaml"), fdl("fh-gone", "gone.sh"));
  await ok(["init", "-f", "gone.yaml"]);
  rmSync(script);
  const out = await ok(["rm", "-f", "gone.yaml"]);
  assert.match(out, /^Function 'fh-gone' successfully deleted\.$/m);
  assert.doesNotMatch(await ok(["ls"]), /fh-gone/);
});

test("scar log shows the kept logs of a function deleted with scar rm", async () => {
  writeFileSync(join(dir, "say.sh"), "echo 'said by the deleted function'\n");
  writeFileSync(join(dir, "say.yaml"), fdl("fh-logs", "say.sh"));
  await ok(["init", "-f", "say.yaml"]);
  await ok(["run", "fh-logs"]);
  await ok(["rm", "-n", "fh-logs"]);
  const r = await scar(["log", "-n", "fh-logs"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /said by the deleted function/);
  assert.match(r.stderr, /was deleted/);
  // a function that never existed is still unknown
  const none = await scar(["log", "-n", "fh-never"]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /Unable to find the function 'fh-never'/);
});

test("scar image rm refuses an image a deployed function uses, unless --force", async () => {
  const root = join(dir, "rootfs-2");
  busyboxRootfs(root, ["sh", "echo"]);
  await importImage(root, "scar-test/in-use", ["ENV PATH=/bin"]);
  writeFileSync(join(dir, "use.sh"), "echo in use\n");
  writeFileSync(
    join(dir, "use.yaml"),
    fdl("fh-user", "use.sh").replace("scar-test/busybox", "scar-test/in-use"),
  );
  await ok(["init", "-f", "use.yaml"]);
  const refused = await scar(["image", "rm", "scar-test/in-use", "--data-dir", dataDir]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /used by deployed function 'fh-user'/);
  assert.match(refused.stderr, /--force/);
  assert.match(await ok(["image", "ls", "--data-dir", dataDir]), /scar-test\/in-use/);
  assert.match(await ok(["run", "fh-user"]), /in use/);
  // another name of the same image may go: the function still has its image
  await ok([
    "image",
    "import",
    root,
    "--tag",
    "scar-test/alias",
    "--data-dir",
    dataDir,
    "--change",
    "ENV PATH=/bin",
  ]);
  const forced = await scar(["image", "rm", "--force", "scar-test/in-use", "--data-dir", dataDir]);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stdout, /Untagged: .*scar-test\/in-use/);
});

test("scar jobs dead shows the last attempt's reason and message", async () => {
  writeFileSync(join(dir, "fail.sh"), "echo 'about to fail'\nexit 3\n");
  writeFileSync(join(dir, "fail.yaml"), fdl("fh-dead", "fail.sh", "      retries: 0\n"));
  await ok(["init", "-f", "fail.yaml"]);
  await ok(["run", "-a", "fh-dead"]);
  const text = await waitFor("a dead letter", async () => {
    const out = await ok(["jobs", "dead", "-n", "fh-dead"]);
    return /fh-dead/.test(out) ? out : undefined;
  });
  const [header, , row] = text.split("\n"); // the header, its underline, the dead letter
  assert.match(header!, /ERROR/);
  const errorAt = header!.indexOf("ERROR");
  const error = row!.slice(errorAt).trim();
  assert.notEqual(error, "-", text);
  assert.match(error, /script-error.*exit code 3/, text);
});

test("scar put into a new bucket prints no library warning", async () => {
  const files = join(dir, "upload");
  mkdirSync(join(files, "sub"), { recursive: true });
  writeFileSync(join(files, "a.txt"), "a\n");
  writeFileSync(join(files, "empty"), "");
  writeFileSync(join(files, "sub", "b.bin"), Buffer.alloc(6 << 20, 7)); // above one part
  const r = await scar(["put", "-b", "fh-new-bucket/in", "-p", files]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(libraryWarnings(r.stderr), [], r.stderr);
  const keys = (await ok(["ls", "-b", "fh-new-bucket/in"])).split("\n").filter(Boolean).sort();
  assert.deepEqual(keys, ["in/", "in/a.txt", "in/empty", "in/sub/b.bin"]);
  const back = join(dir, "back");
  const g = await scar(["get", "-b", "fh-new-bucket/in", "-p", back]);
  assert.equal(g.code, 0, g.stderr);
  assert.deepEqual(libraryWarnings(g.stderr), [], g.stderr);
});

test("an image whose registry cannot be reached says so and names scar image import and pull", async () => {
  writeFileSync(join(dir, "ok.sh"), "echo hi\n");
  const r = await scar([
    "init",
    "-n",
    "fh-noreg",
    "-s",
    "ok.sh",
    "-i",
    "registry.invalid/grycap/doesnotexist",
  ]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /registry registry\.invalid cannot be reached/);
  assert.match(r.stderr, /scar image import/);
  assert.match(r.stderr, /scar image pull/);
  assert.doesNotMatch(r.stderr, /getaddrinfo/);
  const p = await scar(["image", "pull", "registry.invalid/grycap/doesnotexist", "--data-dir", dataDir]);
  assert.equal(p.code, 1, p.stderr);
  assert.match(p.stderr, /registry registry\.invalid cannot be reached/);
  assert.doesNotMatch(p.stderr, /getaddrinfo/);
});

test("--target aws without credentials or a role says what to give, in one line, on every command", async () => {
  // No AWS configuration or credentials at all: nothing reaches AWS.
  const env = {
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_CONFIG_FILE: join(dir, "no-aws-config"),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, "no-aws-creds"),
  };
  for (const args of [
    ["init", "-n", "x", "-i", "scar-test/busybox"],
    ["ls"],
    ["rm", "-n", "x"],
    ["log", "-n", "x"],
    ["put", "-b", "b", "-p", dir],
  ]) {
    const r = await scar([...args, "--target", "aws"], env);
    assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /^error: .*(aws\.iam\.role|credentials|region)/m, args.join(" "));
    assert.doesNotMatch(r.stderr, /^\s+at /m, args.join(" "));
    assert.doesNotMatch(r.stderr, /SCAR_DEBUG/, args.join(" "));
  }
  // A target scar does not have is refused with the list of those it has.
  const r = await scar(["ls", "--target", "gcp"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown target 'gcp'/);
  assert.match(r.stderr, /^hint: scar deploys to 'local' \(the embedded engine\), 'aws'/m);
});

test("a wrong command line exits 2, as the README says", async () => {
  for (const args of [["ls", "--bogus"], ["frobnicate"], ["init", "-m"], []]) {
    const r = await scar(args);
    assert.equal(r.code, 2, `scar ${args.join(" ")}: ${r.stderr}`);
  }
});

test("scar invoke on a function without an HTTP endpoint says so once", async () => {
  writeFileSync(join(dir, "plain.sh"), "echo plain\n");
  writeFileSync(join(dir, "plain.yaml"), fdl("fh-no-api", "plain.sh"));
  await ok(["init", "-f", "plain.yaml"]);
  const r = await scar(["invoke", "-n", "fh-no-api"]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^error: Error retrieving API ID for lambda function 'fh-no-api'$/m);
  assert.match(r.stderr, /^hint: the function has no HTTP endpoint: create it with -api NAME/m);
  assert.equal(r.stderr.match(/HTTP endpoint/g)?.length, 1, r.stderr);
  const none = await scar(["invoke", "-n", "fh-nowhere"]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^error: Unable to find the function 'fh-nowhere'$/m);
});
