import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";

const script = new URL("../../../scripts/demo.sh", import.meta.url).pathname;

test("the README's main job (scripts/demo.sh) runs end to end", () => {
  const r = spawnSync("bash", [script, "5"], { encoding: "utf8", timeout: 240_000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^5 of 5 results in s3:\/\/demo\/out\/$/m);
  assert.match(r.stdout, /^doc-5\.txt has 5 words$/m);
  assert.match(r.stdout, /^5 Succeeded$/m);
  assert.match(r.stdout, /^END RequestId: [0-9a-f-]{36}$/m);
});
