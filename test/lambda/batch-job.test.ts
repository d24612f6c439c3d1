/**
 * Binary mode, as SCAR's Batch job definition runs the supervisor (`echo $EVENT | supervisor`): a real
 * `node dist/src/lambda/bootstrap.js` process with the configuration and script in the job's
 * variables, staging into the embedded store.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { stringify } from "yaml";
import { run } from "../engine/store/helpers.js";
import { BOOTSTRAP, functionEnv, type Lab, lab, s3Event } from "./helpers.js";

let l: Lab;
before(async () => {
  l = await lab(["job-in", "job-out"]);
});
after(async () => {
  await l.stop();
});

const config = {
  name: "scar-job",
  container: { image: "debian:bookworm" },
  execution_mode: "batch",
  input: [{ storage_provider: "s3", path: "job-in" }],
  output: [{ storage_provider: "s3", path: "job-out/done" }],
  storage_providers: {},
};

function jobEnv(script: string): Record<string, string> {
  const env = functionEnv(l.store, "");
  delete (env as Record<string, string | undefined>).SCAR_FUNCTION_CONFIG;
  return {
    ...env,
    LAMBDA_TASK_ROOT: "/nonexistent-task-root",
    FUNCTION_CONFIG: Buffer.from(stringify(config)).toString("base64"),
    SCRIPT: Buffer.from(script).toString("base64"),
    AWS_LAMBDA_REQUEST_ID: "req-batch-1",
  };
}

test("a Batch job: the event on stdin, the script from $SCRIPT, outputs uploaded, exit 0", async () => {
  await l.put("job-in", "a.txt", "abc");
  const script = 'rev < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/a.rev"; echo "id=$AWS_LAMBDA_REQUEST_ID"';
  const r = await run(
    process.execPath,
    [BOOTSTRAP],
    jobEnv(script),
    `${JSON.stringify(s3Event("job-in", "a.txt"))}\n`,
  );
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal((await l.get("job-out", "done/a.rev"))?.toString(), "cba");
  assert.match(r.stdout, /^id=req-batch-1$/m);
  assert.match(r.stdout, / - supervisor - INFO - Executing the function without a time limit$/m);
  assert.equal(r.stderr, "");
});

test("a Batch job whose script fails exits 1 with SCAR's message", async () => {
  const r = await run(process.execPath, [BOOTSTRAP], jobEnv("exit 4"), "{}\n");
  assert.equal(r.code, 1);
  assert.match(r.stdout, / - supervisor - ERROR - User script exited with code 4!$/m);
});
