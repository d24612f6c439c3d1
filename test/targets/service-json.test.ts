/**
 * An FDL function as OSCAR service JSON (what `scar init` sends) and back through the engine's
 * reading of it (what POST /system/services does): scar's engine settings survive in the `scar`
 * object, OSCAR-shaped services may also write them at the top level.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { specFromServiceJson } from "../../src/engine/api/services.js";
import { loadFdl } from "../../src/fdl/index.js";
import { serviceJson } from "../../src/targets/service-json.js";

const dir = mkdtempSync(join(tmpdir(), "scar-service-json-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function fromFdl(yaml: string) {
  const file = join(dir, "fn.yaml");
  writeFileSync(file, yaml);
  writeFileSync(join(dir, "script.sh"), "echo hi\n");
  return loadFdl(file);
}

/** The FDL's first function sent as service JSON and read back by the engine. */
function roundTrip(yaml: string) {
  const fdl = fromFdl(yaml);
  const json = serviceJson(fdl.functions[0]!, { storageProviders: fdl.storage_providers, s3AsMinio: false });
  const { result, cleanup } = specFromServiceJson(json, join(dir, "scratch"));
  cleanup();
  return { json, spec: result.functions[0]! };
}

test("isolation travels in the scar object and comes back as the function's setting", () => {
  const aws = roundTrip(
    "functions:\n  aws:\n  - lambda:\n      name: fresh-each-time\n      init_script: script.sh\n      container:\n        image: busybox\n        isolation: invocation\n",
  );
  assert.equal((aws.json.scar as Record<string, unknown>).isolation, "invocation");
  assert.equal(aws.spec.isolation, "invocation");

  const oscar = roundTrip(
    "functions:\n  oscar:\n  - my_oscar:\n      name: svc\n      image: busybox\n      script: script.sh\n      isolation: environment\n",
  );
  assert.equal((oscar.json.scar as Record<string, unknown>).isolation, "environment");
  assert.equal(oscar.spec.isolation, "environment");

  const unset = roundTrip(
    "functions:\n  aws:\n  - lambda:\n      name: default-one\n      init_script: script.sh\n      container:\n        image: busybox\n",
  );
  assert.equal("isolation" in (unset.json.scar as Record<string, unknown>), false);
  assert.equal(unset.spec.isolation, undefined, "absent stays absent: the engine's default applies");
});

test("a bad isolation in the scar object is a 400 naming the field", () => {
  const body = { name: "svc", image: "busybox", script: "true\n", scar: { isolation: "container" } };
  assert.throws(
    () => specFromServiceJson(body, join(dir, "scratch")),
    (err: Error & { status?: number; details?: { path: string }[] }) =>
      err.status === 400 && err.details?.[0]?.path === "scar.isolation" && /environment/.test(err.message),
  );
});

test("OSCAR's own fields go to OSCAR as written, in Go's types; scar's engine takes them too", () => {
  const { json } = roundTrip(
    "functions:\n  oscar:\n  - my_oscar:\n      name: svc\n      image: busybox\n      script: script.sh\n      vo: vo.example.eu\n      alpine: true\n      labels: {tier: 1}\n      expose: {api_port: 8080}\n      environment:\n        variables: {N: 200}\n",
  );
  assert.equal(json.vo, "vo.example.eu");
  assert.equal(json.alpine, true);
  assert.deepEqual(json.labels, { tier: "1" }, "map[string]string takes strings only");
  assert.deepEqual(json.expose, { api_port: 8080 });
  assert.equal(json.cluster_id, "my_oscar");
  assert.deepEqual((json.environment as { variables: unknown }).variables, { N: "200" });
  const aws = roundTrip(
    "functions:\n  aws:\n  - lambda:\n      name: fn\n      init_script: script.sh\n      container:\n        image: busybox\n",
  );
  assert.equal("cluster_id" in aws.json, false, "SCAR functions carry no OSCAR fields");
});
