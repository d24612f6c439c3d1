/**
 * Issue 12.7: containers ran with no seccomp filter. Now every function's container gets scar's
 * default profile (src/engine/runtime/seccomp.ts): a blocked call such as unshare(CLONE_NEWUSER),
 * which succeeds for root in an unfiltered container, fails with EPERM, while ordinary scripts (sh,
 * cat, sort, pipes, background jobs, file writes) work as before. `lambda.container.seccomp:
 * unconfined` removes the filter.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type Harness, openHarness, RUNTIMES } from "./runtime-harness.js";

let h: Harness;
before(async () => {
  h = await openHarness();
});
after(async () => {
  await h?.close();
});

const SCRIPT = [
  "grep Seccomp: /proc/self/status",
  "if unshare -U true 2>/tmp/err; then echo unshare=allowed; else echo unshare=denied; cat /tmp/err; fi",
  'printf "b\\na\\n" | sort | cat > "$TMP_OUTPUT_DIR/sorted.txt"',
  "(sleep 0.01 & wait) && echo background=ok",
  "",
].join("\n");

for (const runtime of RUNTIMES) {
  test(`${runtime}: the default profile denies unshare(CLONE_NEWUSER) with EPERM; ordinary scripts work`, async () => {
    const f = h.fn(`seccomp-${runtime}`, `      output:\n      - path: media/seccomp-${runtime}\n`, SCRIPT);
    const r = await h.run(runtime, f, {});
    assert.equal(r.reason, "ok", `${r.log.join("\n")}\n${r.output}`);
    const out = r.output.toString();
    assert.match(out, /^Seccomp:\s+2$/m, "a seccomp filter is on");
    assert.match(out, /^unshare=denied$/m);
    assert.match(out, /Operation not permitted/, "EPERM, as the profile returns");
    assert.match(out, /^background=ok$/m);
    assert.equal(await h.get(`seccomp-${runtime}/sorted.txt`), "a\nb\n");
  });

  test(`${runtime}: lambda.container.seccomp: unconfined runs the container without a filter`, async () => {
    const f = h.fn(`unconfined-${runtime}`, "", SCRIPT, "        seccomp: unconfined\n");
    assert.equal(f.seccomp, "unconfined");
    const r = await h.run(runtime, f, {}, {}, { seccomp: f.seccomp });
    assert.equal(r.reason, "ok", `${r.log.join("\n")}\n${r.output}`);
    const out = r.output.toString();
    assert.match(out, /^Seccomp:\s+0$/m);
    assert.match(out, /^unshare=allowed$/m);
  });
}
