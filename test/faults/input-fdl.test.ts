/**
 * The FDL's own caps on amounts (the machine is checked by the engine when it deploys): a memory or
 * CPU amount too large to be a number is an error naming the field, not Infinity in the spec.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
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
