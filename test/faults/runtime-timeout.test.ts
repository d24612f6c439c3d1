/**
 * Issue 13.6: at the time limit the whole container is killed at once. Before, a SIGTERM came first
 * and a grace of 2 s: the script's shell (the container's init ignores SIGTERM) printed `Terminated`
 * for its foreground `sleep`, went on with its next lines (`end`, one more output file) and those
 * files were uploaded too. Now only what was written before the kill is uploaded (SCAR's
 * timeout_threshold rule), and the job log names those files.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type Harness, hostProcesses, openHarness, RUNTIMES } from "./runtime-harness.js";

let h: Harness;
before(async () => {
  h = await openHarness();
});
after(async () => {
  await h?.close();
});

for (const runtime of RUNTIMES) {
  test(`${runtime}: a timed-out script is killed with its background processes; only earlier files are uploaded`, async () => {
    const marker = runtime === "crun" ? "8101" : "8102";
    const f = h.fn(
      `late-${runtime}`,
      `      timeout: 2\n      timeout_threshold: 1\n      output:\n      - path: media/timeout-${runtime}\n`,
      [
        'echo first > "$TMP_OUTPUT_DIR/before.txt"',
        // a background loop that writes to the output folder until it is killed
        `( while :; do echo tick >> "$TMP_OUTPUT_DIR/ticks.txt"; sleep 0.05; done; sleep ${marker}9 ) &`,
        `sleep ${marker}1 &`,
        "echo started",
        // the time limit (2 s - 1 s threshold) falls in here
        "sleep 5",
        "echo end",
        'echo late > "$TMP_OUTPUT_DIR/after.txt"',
        "",
      ].join("\n"),
    );
    const r = await h.run(runtime, f, {});
    assert.equal(r.reason, "timeout", r.log.join("\n"));
    assert.equal(r.exitCode, 137, "killed by SIGKILL, not ended by the script");
    assert.equal(r.output.toString(), "started\n", "nothing ran after the limit (no `Terminated`, no `end`)");
    const keys = await h.keys(`timeout-${runtime}/`);
    assert.deepEqual(keys, [`timeout-${runtime}/before.txt`, `timeout-${runtime}/ticks.txt`]);
    assert.equal(await h.get(`timeout-${runtime}/before.txt`), "first\n");
    assert.deepEqual(hostProcesses(`sleep ${marker}`), [], "no process of the container is left");
    const line = r.log.find((l) => l.includes("Uploaded after the timeout"));
    assert.ok(line, r.log.join("\n"));
    assert.match(line, /2 files: 'media\/timeout-\w+\/before\.txt', 'media\/timeout-\w+\/ticks\.txt'/);
  });
}
