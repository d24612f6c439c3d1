import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

const bin = new URL("../../../bin/scar", import.meta.url).pathname;
const fixtures = new URL("../../../test/fixtures/fdl/", import.meta.url).pathname;
const home = mkdtempSync(join(tmpdir(), "scar-validate-"));
after(() => rmSync(home, { recursive: true, force: true }));

function scar(...args: string[]) {
  const env = { ...process.env, SCAR_CONFIG_FOLDER: join(home, ".scar") };
  return spawnSync(bin, args, { encoding: "utf8", env });
}

test("valid FDL: a table of the functions, exit 0; scar.cfg notices go to stderr", () => {
  const r = scar("validate", "-f", join(fixtures, "video-process.yaml"));
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.match(lines[0]!, /^NAME\s+PROVIDER\s+IMAGE\s+MEMORY\s+TIMEOUT\s+MODE\s+INPUT\s+OUTPUT$/);
  assert.match(
    lines[2]!,
    /^scar-batch-ffmpeg-split\s+aws\s+grycap\/ffmpeg\s+512\s+300\s+batch\s+scar-video\/input\s+scar-video\/split-images$/,
  );
  assert.match(
    lines[3]!,
    /^scar-lambda-darknet\s+aws\s+grycap\/darknet\s+3008\s+300\s+lambda\s+scar-video\/split-images\s+scar-video\/output$/,
  );
  assert.match(lines[5]!, /video-process\.yaml: 2 functions, valid\.$/);
  assert.ok(existsSync(join(home, ".scar", "scar.cfg")), "scar.cfg created on first use");
});

test("--json prints exactly one JSON document with the documented fields", () => {
  const r = scar("validate", "-f", join(fixtures, "av-workflow.yaml"), "--json");
  assert.equal(r.status, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(doc), ["functions", "warnings"]);
  assert.deepEqual(doc.warnings, []);
  const f = doc.functions[0];
  for (const key of [
    "name",
    "provider",
    "image",
    "script",
    "memory",
    "timeout",
    "timeout_threshold",
    "execution_mode",
    "environment",
    "input",
    "output",
  ]) {
    assert.ok(key in f, `missing ${key}`);
  }
  assert.equal(f.raw, undefined, "the merged provider config is not part of the document");
  assert.deepEqual(f.input, [
    {
      storage_provider: "s3.default",
      path: "scar-av-workflow/start",
      bucket: "scar-av-workflow",
      folder: "start",
    },
  ]);
  assert.deepEqual(f.output[1], {
    storage_provider: "s3.default",
    path: "scar-av-workflow/audio",
    bucket: "scar-av-workflow",
    folder: "audio",
    suffix: ["wav"],
    prefix: [],
  });
});

test("--json never prints secret values", () => {
  const r = scar("validate", "-f", join(fixtures, "oscar-multi-cluster.yaml"), "--json");
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /s3cr3t/);
  const doc = JSON.parse(r.stdout);
  assert.deepEqual(doc.functions[0].secrets, ["API_TOKEN"]);
  assert.equal(doc.warnings.length, 2);
  assert.deepEqual(Object.keys(doc.warnings[0]), ["file", "line", "column", "path", "message"]);
});

test("invalid FDL: compiler-style errors on stderr, exit 1", () => {
  const d = mkdtempSync(join(home, "bad-"));
  const file = join(d, "fn.yaml");
  writeFileSync(
    file,
    "functions:\n  aws:\n  - lambda:\n      name: f1\n      memory: 64\n      container:\n        image: busybox\n",
  );
  const r = scar("validate", "-f", file);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, "");
  assert.match(
    r.stderr,
    new RegExp(
      `^${file}:5:15: error: functions\\.aws\\[0\\]\\.lambda\\.memory: memory 64 is out of range: set a whole number of MB from 128 to 10240$`,
      "m",
    ),
  );
  assert.match(r.stderr, /fn\.yaml: 1 error; nothing was deployed\.$/m);

  const j = scar("validate", "-f", file, "--json");
  assert.equal(j.status, 1);
  assert.deepEqual(JSON.parse(j.stdout), {
    errors: [
      {
        file,
        line: 5,
        column: 15,
        path: "functions.aws[0].lambda.memory",
        message: "memory 64 is out of range: set a whole number of MB from 128 to 10240",
      },
    ],
  });
});

test("keys named like Object.prototype's members: warnings (kept), and '__proto__' an error", () => {
  const d = mkdtempSync(join(home, "proto-"));
  const file = join(d, "fn.yaml");
  const fn = (extra: string) =>
    `functions:\n  aws:\n  - lambda:\n      name: f1\n      container:\n        image: busybox\n${extra}`;
  writeFileSync(file, fn("      constructor: 1\n      toString: x\n    hasOwnProperty: 2\n"));
  const r = scar("validate", "-f", file, "--json");
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(
    JSON.parse(r.stdout).warnings.map((w: { path: string }) => w.path),
    [
      "functions.aws[0].lambda.constructor",
      "functions.aws[0].lambda.toString",
      "functions.aws[0].hasOwnProperty",
    ],
  );
  writeFileSync(file, fn("      __proto__: {memory: 1024}\n"));
  const p = scar("validate", "-f", file);
  assert.equal(p.status, 1, p.stdout);
  assert.match(
    p.stderr,
    /fn\.yaml:7:7: error: functions\.aws\[0\]\.lambda\.__proto__: a key cannot be named '__proto__'/,
  );
});

test("YAML syntax errors and missing files: a message, never a stack trace", () => {
  const d = mkdtempSync(join(home, "syntax-"));
  const file = join(d, "fn.yaml");
  writeFileSync(file, "functions:\n  aws:\n  - lambda: {name: f1\n");
  const r = scar("validate", "-f", file);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /fn\.yaml:\d+:\d+: error: YAML syntax error: /);
  assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+/);

  const m = scar("validate", "-f", join(d, "nope.yaml"), "--json");
  assert.equal(m.status, 1);
  assert.deepEqual(JSON.parse(m.stdout).errors[0].message, "cannot read the FDL file: file not found");
});

test("validate without -f is a usage error", () => {
  const r = scar("validate");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /required option '-f, --conf-file <file>' not specified/);
});
