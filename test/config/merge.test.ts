import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultConfig } from "../../src/config/defaults.js";
import { deepMerge } from "../../src/config/merge.js";
import { FdlError } from "../../src/fdl/index.js";
import { SourceFile } from "../../src/fdl/source.js";
import { load } from "../fdl/helpers.js";

test("deepMerge: maps merge, lists replace, null does not erase, inputs untouched", () => {
  const base = { a: { b: 1, c: [1, 2] }, d: "x", e: 5 };
  const over = { a: { c: [3] }, d: null, f: null };
  const out = deepMerge(base, over);
  assert.deepEqual(out, { a: { b: 1, c: [3] }, d: "x", e: 5, f: null });
  assert.deepEqual(base, { a: { b: 1, c: [1, 2] }, d: "x", e: 5 });
  out.a.c.push(9);
  assert.deepEqual(over.a.c, [3], "the result shares no objects with the inputs");
});

const FDL =
  "functions:\n  aws:\n  - lambda:\n      name: f1\n      memory: 1024\n      layers: [arn:fdl]\n      container:\n        image: busybox\n";

function cfgWith(edit: (c: ReturnType<typeof defaultConfig>) => void) {
  const config = defaultConfig();
  edit(config);
  return { config, source: SourceFile.parse("/cfg/scar.cfg", JSON.stringify(config, null, 2)).source };
}

test("precedence: command line > FDL > scar.cfg, key by key", () => {
  const config = cfgWith((c) => {
    c.aws.lambda.memory = 256;
    c.aws.lambda.timeout = 100;
    c.aws.lambda.log_level = "DEBUG";
    c.aws.lambda.layers = ["arn:cfg1", "arn:cfg2"];
  });
  const f = load(FDL, { config, overrides: { aws: { lambda: { timeout: 60 } } } }).functions[0]!;
  assert.equal(f.timeout, 60, "CLI wins over scar.cfg");
  assert.equal(f.memory, 1024, "FDL wins over scar.cfg");
  assert.equal(f.log_level, "DEBUG", "scar.cfg fills what nobody else set");
  // Lists replace: the FDL's layers, not scar.cfg's plus the FDL's (SCAR's concatenation).
  assert.deepEqual((f.raw.lambda as Record<string, unknown>).layers, ["arn:fdl"]);
  const g = load(FDL, { config, overrides: { aws: { lambda: { memory: 2048, layers: ["arn:cli"] } } } })
    .functions[0]!;
  assert.equal(g.memory, 2048, "CLI wins over the FDL");
  assert.deepEqual((g.raw.lambda as Record<string, unknown>).layers, ["arn:cli"]);
});

test("the command line applies to every aws function of the file, as in SCAR", () => {
  const two = `${FDL}  - lambda:\n      name: f2\n      container:\n        image: busybox\n`;
  const fns = load(two, { overrides: { aws: { lambda: { timeout: 42 } } } }).functions;
  assert.deepEqual(
    fns.map((f) => f.timeout),
    [42, 42],
  );
});

test("a bad value is reported where it was written: scar.cfg, the FDL or the command line", () => {
  const config = cfgWith((c) => {
    c.aws.lambda.timeout = 5000;
  });
  const where = (opts: Parameters<typeof load>[1]) => {
    try {
      load(FDL, opts);
    } catch (err) {
      assert.ok(err instanceof FdlError);
      const e = err.issues.find((i) => i.severity === "error")!;
      return `${e.file}:${e.line} ${e.path}`;
    }
    assert.fail("expected an error");
  };
  assert.equal(where({ config }), "/cfg/scar.cfg:33 aws.lambda.timeout");
  assert.equal(
    where({ config, overrides: { aws: { lambda: { timeout: 0 } } } }),
    "(command line):0 lambda.timeout",
  );
});

test("an OSCAR cluster's memory, cpu and log_level in scar.cfg are its services' defaults", () => {
  const config = cfgWith((c) => {
    c.oscar.my_oscar!.memory = "1Gi";
    c.oscar.my_oscar!.cpu = "2";
  });
  const f = load(
    "functions:\n  oscar:\n  - my_oscar:\n      name: svc\n      image: busybox\n      cpu: '0.5'\n",
    { config },
  ).functions[0]!;
  assert.equal(f.memory, 1024);
  assert.equal(f.cpu, 0.5);
});
