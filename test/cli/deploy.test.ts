/**
 * scar init / update / validate of FDL files with several functions, against a real engine: a
 * deployment is all or nothing, one function of a file can be finished alone, and function names
 * follow one rule in validate and init.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { busyboxRootfs } from "../engine/images/helpers.js";
import { useCliWorkspace } from "./harness.js";

const { dir, scar, ok, importImage } = useCliWorkspace("scar-deploy-", { target: "local" });
const IMAGE = "scar-test/deploy:1";
/** An image no registry answers for: getting it fails at once. */
const MISSING = "127.0.0.1:1/scar-test/missing:1";

const fnYaml = (name: string, image: string, input: string, output: string) =>
  [
    "  - lambda:",
    `      name: ${name}`,
    "      init_script: script.sh",
    "      container:",
    `        image: ${image}`,
    "      input:",
    "      - storage_provider: s3",
    `        path: ${input}`,
    "      output:",
    "      - storage_provider: s3",
    `        path: ${output}`,
  ].join("\n");

function fdl(file: string, ...fns: string[]) {
  writeFileSync(join(dir, file), `functions:\n  aws:\n${fns.join("\n")}\n`);
  return file;
}

async function deployed(): Promise<string[]> {
  const doc = JSON.parse(await ok(["ls", "--json"]));
  return (doc.Functions as { Name: string }[]).map((f) => f.Name).sort();
}

before(async () => {
  const root = join(dir, "img");
  busyboxRootfs(root, ["sh", "echo", "cat", "sleep"]);
  await importImage(root, IMAGE, ["ENV PATH=/bin"]);
  writeFileSync(join(dir, "script.sh"), 'echo "ran $STORAGE_OBJECT_KEY"\n');
});

test("init -f: a function whose image is missing deploys nothing, not even the functions before it", async () => {
  const file = fdl(
    "missing.yaml",
    fnYaml("m-one", IMAGE, "mis/one-in", "mis/one-out"),
    fnYaml("m-two", MISSING, "mis/two-in", "mis/two-out"),
  );
  const r = await scar(["init", "-f", file]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /m-two/);
  assert.match(r.stderr, /nothing was deployed/);
  assert.deepEqual(await deployed(), []);
});

test("init -f: a function the engine refuses after others were created: those are removed again", async () => {
  // 'loop-b' closes a loop with 'other', already deployed: only the engine, which sees both, knows.
  await ok(["init", "-f", fdl("other.yaml", fnYaml("other", IMAGE, "loop/b", "loop/a"))]);
  const file = fdl(
    "half.yaml",
    fnYaml("half-a", IMAGE, "half/in", "half/out"),
    fnYaml("loop-b", IMAGE, "loop/a", "loop/b"),
  );
  const r = await scar(["init", "-f", file]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /loop/);
  assert.match(r.stderr, /nothing was deployed \('half-a' removed again\)/);
  assert.deepEqual(await deployed(), ["other"]);
  await ok(["rm", "-n", "other"]);
});

test("a half-deployed file: init -f says what exists and what not; init -f -n NAME finishes it", async () => {
  const file = fdl(
    "pair.yaml",
    fnYaml("p-one", IMAGE, "pair/one-in", "pair/one-out"),
    fnYaml("p-two", IMAGE, "pair/two-in", "pair/two-out"),
  );
  // -n picks one function of a file of several (SCAR's -n would rename them all to one name).
  const first = await ok(["init", "-f", file, "-n", "p-one"]);
  assert.match(first, /^Function 'p-one' successfully created\.$/m);
  assert.doesNotMatch(first, /p-two/);
  assert.deepEqual(await deployed(), ["p-one"]);

  const again = await scar(["init", "-f", file]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /'p-one' of pair\.yaml already exists, 'p-two' does not; nothing was deployed/);
  assert.match(again.stderr, /scar init -f pair\.yaml -n p-two/);
  const update = await scar(["update", "-f", file]);
  assert.equal(update.code, 1);
  assert.match(update.stderr, /Unable to find the function 'p-two'/);
  assert.match(update.stderr, /scar init -f pair\.yaml -n p-two/);
  assert.deepEqual(await deployed(), ["p-one"]);

  const unknown = await scar(["init", "-f", file, "-n", "p-three"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /pair\.yaml has no function 'p-three'/);
  assert.match(unknown.stderr, /p-one, p-two/);

  await ok(["init", "-f", file, "-n", "p-two"]);
  assert.deepEqual(await deployed(), ["p-one", "p-two"]);
  const updated = await ok(["update", "-f", file, "-n", "p-two"]);
  assert.equal(updated, "Function 'p-two' successfully updated.\n");
  await ok(["rm", "-f", file]);
});

test("function names: validate and init apply one rule, reported at the user's line", async () => {
  const file = fdl("caps.yaml", fnYaml("My_Func", IMAGE, "caps/in", "caps/out"));
  // The engine emulates Lambda for functions.aws: Lambda's rule, capitals and '_' allowed.
  await ok(["validate", "-f", file]);
  assert.match(await ok(["init", "-f", file]), /^Function 'My_Func' successfully created\.$/m);
  await ok(["rm", "-n", "My_Func"]);
  // An OSCAR cluster makes Kubernetes objects of services: both commands refuse, the same way.
  const expected =
    /caps\.yaml:4:13: error: functions\.aws\[0\]\.lambda\.name: 'My_Func' is a valid AWS Lambda name, but OSCAR clusters make Kubernetes objects of their services, .*; e\.g\. 'my-func'/;
  const v = await scar(["validate", "--target", "oscar:somewhere", "-f", file]);
  assert.equal(v.code, 1);
  assert.match(v.stderr, expected);
  const i = await scar(["init", "--target", "oscar:somewhere", "-f", file]);
  assert.equal(i.code, 1);
  assert.match(i.stderr, expected);
  assert.doesNotMatch(i.stderr, /functions\.oscar/);
});

test("update -f: all or nothing too; what was updated before a refusal is put back", async () => {
  const good = fdl(
    "upd.yaml",
    fnYaml("u-one", IMAGE, "upd/one-in", "upd/one-out"),
    fnYaml("u-two", IMAGE, "upd/two-in", "upd/two-out"),
  );
  await ok(["init", "-f", good]);
  await ok(["init", "-f", fdl("other2.yaml", fnYaml("other2", IMAGE, "loop2/b", "loop2/a"))]);
  const memory = async () =>
    Object.fromEntries(
      (JSON.parse(await ok(["ls", "--json"])).Functions as { Name: string; Memory: number }[]).map((f) => [
        f.Name,
        f.Memory,
      ]),
    );
  const before = await memory();
  assert.equal(before["u-one"], 512);
  const withMemory = (yaml: string) =>
    yaml.replace("      init_script", "      memory: 1024\n      init_script");
  // The second function's image is missing: checked before anything changes.
  fdl(
    "upd-missing.yaml",
    withMemory(fnYaml("u-one", IMAGE, "upd/one-in", "upd/one-out")),
    fnYaml("u-two", MISSING, "upd/two-in", "upd/two-out"),
  );
  const missing = await scar(["update", "-f", "upd-missing.yaml"]);
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, /function 'u-two': .*; nothing was updated/);
  assert.deepEqual(await memory(), before);
  // The engine refuses the second (a loop with 'other2'), after the first was updated: put back.
  fdl(
    "upd-loop.yaml",
    withMemory(fnYaml("u-one", IMAGE, "upd/one-in", "upd/one-out")),
    fnYaml("u-two", IMAGE, "loop2/a", "loop2/b"),
  );
  const loop = await scar(["update", "-f", "upd-loop.yaml"]);
  assert.equal(loop.code, 1, loop.stderr);
  assert.match(loop.stderr, /function 'u-two': .*loop.*; nothing was updated \('u-one' put back as it was\)/);
  assert.deepEqual(await memory(), before);
  await ok(["rm", "-f", good]);
  await ok(["rm", "-n", "other2"]);
});
