/**
 * The FDL's own caps on amounts (the machine is checked by the engine when it deploys): a memory or
 * CPU amount too large to be a number is an error naming the field, not Infinity in the spec.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultConfig } from "../../src/config/defaults.js";
import { FdlError, parseFdl } from "../../src/fdl/index.js";

function service(line: string): string {
  return `functions:\n  oscar:\n  - c:\n      name: a\n      image: x\n      ${line}\n`;
}

test("memory and cpu amounts too large to be numbers are errors naming the field", () => {
  const huge = `1${"0".repeat(400)}`;
  for (const [line, path, message] of [
    [`memory: "${huge}Gi"`, "functions.oscar[0].c.memory", /too large to be an amount of memory/],
    [`cpu: "${huge}"`, "functions.oscar[0].c.cpu", /too large to be an amount of CPU/],
  ] as const) {
    assert.throws(
      () => parseFdl("/tmp/fn.yaml", service(line)),
      (err: unknown) => {
        assert.ok(err instanceof FdlError, String(err));
        const e = err.issues.find((i) => i.severity === "error");
        assert.equal(e?.path, path, JSON.stringify(err.issues));
        assert.match(e!.message, message);
        return true;
      },
    );
  }
  // What no machine here has is still a valid FDL: the engine refuses it when it deploys.
  assert.equal(parseFdl("/tmp/fn.yaml", service('memory: "1000Gi"')).functions[0]!.memory, 1024000);
});

test("a variable whose value holds a NUL is an error naming it (no process could be given it)", () => {
  const yaml = service('environment:\n        variables:\n          GOOD: "1"\n          BAD: "a\\0b"');
  assert.throws(
    () => parseFdl("/tmp/fn.yaml", yaml),
    (err: unknown) => {
      assert.ok(err instanceof FdlError, String(err));
      const e = err.issues.find((i) => i.severity === "error");
      assert.equal(e?.path, "functions.oscar[0].c.environment.variables.BAD", JSON.stringify(err.issues));
      assert.match(e!.message, /NUL/);
      return true;
    },
  );
});

test("keys named like Object.prototype's members are kept as written, through every merge layer", () => {
  const cfg = defaultConfig();
  Object.assign(cfg.aws, { valueOf: "from scar.cfg" });
  const yaml = [
    "functions:",
    "  aws:",
    "  - lambda:",
    "      name: a",
    "      container: {image: x, constructor: c, environment: {Variables: {constructor: v1, toString: v2}}}",
    "      constructor: {x: 1}",
    "      toString: t",
    "    hasOwnProperty: h",
    "  oscar:",
    "  - constructor:",
    "      name: b",
    "      image: x",
    "      toString: o",
    "",
  ].join("\n");
  const r = parseFdl("/tmp/fn.yaml", yaml, {
    config: { config: cfg },
    overrides: { aws: { lambda: { toString: "cli" } } },
  });
  const [aws, oscar] = r.functions;
  assert.equal(aws!.raw.hasOwnProperty, "h");
  const lambda = aws!.raw.lambda as Record<string, unknown>;
  assert.deepEqual(lambda.constructor, { x: 1 });
  assert.equal(lambda.toString, "cli");
  assert.equal((lambda.container as Record<string, unknown>).constructor, "c");
  assert.equal(aws!.raw.valueOf, "from scar.cfg");
  assert.deepEqual(aws!.environment, { constructor: "v1", toString: "v2" });
  assert.equal(oscar!.cluster, "constructor");
  assert.equal(oscar!.raw.toString, "o");
  const warned = r.warnings.map((w) => w.path);
  for (const path of [
    "functions.aws[0].lambda.constructor",
    "functions.aws[0].lambda.toString",
    "functions.aws[0].hasOwnProperty",
    "functions.oscar[0].constructor.toString",
  ])
    assert.ok(warned.includes(path), `${path} is warned about: ${warned.join(", ")}`);
});

test("a key named __proto__ is an error wherever it is (its value could not be kept)", () => {
  const yaml = [
    "functions:",
    "  aws:",
    "  - lambda:",
    "      name: a",
    "      container: {image: x}",
    "      __proto__: {memory: 1024}",
    "      environment: {Variables: {__proto__: v}}",
    "",
  ].join("\n");
  assert.throws(
    () => parseFdl("/tmp/fn.yaml", yaml),
    (err: unknown) => {
      assert.ok(err instanceof FdlError, String(err));
      const errors = err.issues.filter((i) => i.severity === "error");
      assert.deepEqual(
        errors.map((e) => `${e.line}:${e.column} ${e.path}`),
        [
          "6:7 functions.aws[0].lambda.__proto__",
          "7:33 functions.aws[0].lambda.environment.Variables.__proto__",
        ],
      );
      assert.match(errors[0]!.message, /cannot be named '__proto__'/);
      return true;
    },
  );
  assert.equal(({} as { memory?: number }).memory, undefined, "no prototype was touched");
});
