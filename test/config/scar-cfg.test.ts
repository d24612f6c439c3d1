import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { CONFIG_VERSION, defaultConfig } from "../../src/config/defaults.js";
import { compareVersions, configFolder, loadScarConfig } from "../../src/config/scar-cfg.js";
import { FdlError } from "../../src/fdl/index.js";

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function folder(files: Record<string, string> = {}): string {
  const d = mkdtempSync(join(tmpdir(), "scar-cfg-"));
  dirs.push(d);
  for (const [n, t] of Object.entries(files)) writeFileSync(join(d, n), t);
  return d;
}
const read = (d: string, name = "scar.cfg") => JSON.parse(readFileSync(join(d, name), "utf8"));

/** SCAR 4.3.1's default file (config_version 1.1.0), as a user edited it. */
// biome-ignore lint/suspicious/noExplicitAny: a free-form JSON document edited like a user would
type Json = Record<string, any>;
function scar431File(): Json {
  const cfg: Json = structuredClone(defaultConfig());
  cfg.scar = { config_version: "1.1.0" };
  cfg.aws.lambda.runtime = "python3.7";
  cfg.aws.lambda.environment.Variables = {
    UDOCKER_BIN: "/opt/udocker/bin/",
    UDOCKER_LIB: "/opt/udocker/lib/",
    UDOCKER_DIR: "/tmp/shared/udocker",
    UDOCKER_EXEC: "/opt/udocker/udocker.py",
  };
  delete cfg.aws.lambda.architectures;
  cfg.aws.iam.role = "arn:aws:iam::123456789012:role/my-scar-role";
  cfg.aws.lambda.memory = 1024;
  cfg.aws.lambda.region = "eu-west-1";
  cfg.aws.batch.compute_resources.subnets = ["subnet-1"];
  cfg.oscar.my_oscar.endpoint = "https://oscar.example.org";
  return cfg;
}

test("configFolder: $SCAR_CONFIG_FOLDER, else ~/.scar", () => {
  assert.equal(configFolder({ SCAR_CONFIG_FOLDER: "/x/y" }), "/x/y");
  assert.match(configFolder({}), /\/\.scar$/);
});

test("a missing scar.cfg is created with defaults and the command goes on", () => {
  const d = join(folder(), "nested", ".scar");
  const loaded = loadScarConfig(d);
  assert.equal(loaded.path, join(d, "scar.cfg"));
  assert.deepEqual(read(d), defaultConfig());
  assert.equal(loaded.config.scar.config_version, CONFIG_VERSION);
  assert.equal(loaded.config.scar.target, "local");
  assert.deepEqual(loaded.notices, [`Config file '${join(d, "scar.cfg")}' created with default values.`]);
  // Second use: nothing to say, nothing rewritten.
  assert.deepEqual(loadScarConfig(d).notices, []);
});

test("SCAR 4.3.1's config (1.1.0) is backed up to scar.cfg_old and upgraded, keeping the user's values", () => {
  const original = `${JSON.stringify(scar431File(), null, 2)}\n`;
  const d = folder({ "scar.cfg": original });
  const loaded = loadScarConfig(d);
  assert.equal(readFileSync(join(d, "scar.cfg_old"), "utf8"), original, "the old file is kept byte for byte");
  const now = read(d);
  assert.equal(now.scar.config_version, CONFIG_VERSION);
  assert.equal(now.aws.iam.role, "arn:aws:iam::123456789012:role/my-scar-role");
  assert.equal(now.aws.lambda.memory, 1024);
  assert.equal(now.aws.lambda.region, "eu-west-1");
  assert.deepEqual(now.aws.batch.compute_resources.subnets, ["subnet-1"]);
  assert.equal(now.oscar.my_oscar.endpoint, "https://oscar.example.org");
  // Old defaults that cannot work any more are replaced by the new ones.
  assert.equal(now.aws.lambda.runtime, "image");
  assert.deepEqual(now.aws.lambda.environment.Variables, {});
  // Keys new in this version appear.
  assert.equal(now.scar.target, "local");
  assert.deepEqual(now.aws.lambda.architectures, ["x86_64"]);
  assert.deepEqual(loaded.config, now);
  assert.match(
    loaded.notices[0]!,
    /from config_version 1\.1\.0 to 2\.0\.0, keeping your values; the old file is saved in '.*scar\.cfg_old'/,
  );
});

test("an upgrade never overwrites an earlier backup", () => {
  const d = folder({ "scar.cfg": JSON.stringify(scar431File()), "scar.cfg_old": "precious" });
  loadScarConfig(d);
  assert.equal(readFileSync(join(d, "scar.cfg_old"), "utf8"), "precious");
  assert.equal(read(d, "scar.cfg_old.1").scar.config_version, "1.1.0");
});

test("a SCAR 2.x/3.x JSON config (aws.region, lambda.time) is reshaped", () => {
  const d = folder({
    "scar.cfg": JSON.stringify({
      aws: {
        boto_profile: "work",
        region: "eu-central-1",
        iam: { role: "arn:aws:iam::123456789012:role/r" },
        lambda: { time: 200, memory: 640, timeout_threshold: 15, runtime: "python3.6" },
      },
    }),
  });
  const cfg = loadScarConfig(d).config;
  assert.equal(cfg.aws.lambda.timeout, 200);
  assert.equal(cfg.aws.lambda.time, undefined);
  assert.equal(cfg.aws.lambda.memory, 640);
  assert.equal((cfg.aws.lambda.container as Record<string, unknown>).timeout_threshold, 15);
  assert.equal(cfg.aws.lambda.runtime, "image");
  for (const svc of ["lambda", "s3", "batch", "cloudwatch", "api_gateway", "iam"] as const) {
    assert.equal(cfg.aws[svc].region, "eu-central-1", svc);
    assert.equal(cfg.aws[svc].boto_profile, "work", svc);
  }
  assert.equal(cfg.aws.iam.role, "arn:aws:iam::123456789012:role/r");
});

test("the INI file of SCAR's first versions is read and converted", () => {
  const ini = [
    "[scar]",
    "lambda_description = my functions",
    "lambda_memory = 256",
    "lambda_time = 150",
    "lambda_region = eu-west-3",
    "lambda_role = arn:aws:iam::123456789012:role/lambda-role",
    "lambda_timeout_threshold = 12",
    "lambda_something_else = kept",
    "",
  ].join("\n");
  const d = folder({ "scar.cfg": ini });
  const loaded = loadScarConfig(d);
  assert.equal(readFileSync(join(d, "scar.cfg_old"), "utf8"), ini);
  const cfg = read(d);
  assert.equal(cfg.scar.config_version, CONFIG_VERSION);
  assert.equal(cfg.aws.lambda.description, "my functions");
  assert.equal(cfg.aws.lambda.memory, 256);
  assert.equal(cfg.aws.lambda.timeout, 150);
  assert.equal(cfg.aws.lambda.region, "eu-west-3");
  assert.equal(cfg.aws.s3.region, "eu-west-3");
  assert.equal(cfg.aws.iam.role, "arn:aws:iam::123456789012:role/lambda-role");
  assert.equal(cfg.aws.lambda.container.timeout_threshold, 12);
  assert.deepEqual(cfg.scar.legacy_ini, { lambda_something_else: "kept" });
  assert.equal(loaded.notices.length, 2);
  assert.match(loaded.notices[0]!, /lambda_something_else/);
  assert.match(loaded.notices[1]!, /Converted the INI configuration/);
});

test("a broken scar.cfg is an error with its position, and the file is left alone", () => {
  const text = '{\n  "scar": {\n    "config_version": "2.0.0",\n  }\n}\n';
  const d = folder({ "scar.cfg": text });
  assert.throws(
    () => loadScarConfig(d),
    (err: unknown) => {
      assert.ok(err instanceof FdlError);
      const i = err.issues[0]!;
      assert.equal(i.file, join(d, "scar.cfg"));
      assert.equal(i.line, 4);
      assert.match(
        i.message,
        /^scar\.cfg is not valid JSON .*move it away to get a new one with default values\.$/,
      );
      return true;
    },
  );
  assert.equal(readFileSync(join(d, "scar.cfg"), "utf8"), text);
  assert.deepEqual(readdirSync(d), ["scar.cfg"], "no backup, no temp file");
});

test("a file from a newer scar is used as it is", () => {
  const newer = { scar: { config_version: "9.0.0", target: "aws" }, aws: { lambda: { memory: 2048 } } };
  const d = folder({ "scar.cfg": JSON.stringify(newer) });
  const loaded = loadScarConfig(d);
  assert.deepEqual(loaded.notices, []);
  assert.equal(loaded.config.scar.target, "aws");
  assert.equal(loaded.config.aws.lambda.memory, 2048);
  assert.equal(loaded.config.aws.lambda.timeout, 300, "defaults fill keys the file lacks");
  assert.deepEqual(read(d), newer, "the file is not rewritten");
});

test("compareVersions", () => {
  assert.equal(compareVersions("1.1.0", "2.0.0"), -1);
  assert.equal(compareVersions("2.0.0", "2.0.0"), 0);
  assert.equal(compareVersions("2.0.1", "2.0"), 1);
  assert.equal(compareVersions("", "2.0.0"), -1);
  assert.equal(compareVersions("1.0.9", "1.1.0"), -1);
});
