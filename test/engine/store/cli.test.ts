// `scar store serve`: argument errors, a free port with --port 0, clean shutdown on SIGTERM.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

const bin = new URL("../../../../bin/scar", import.meta.url).pathname;
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;

test("scar store serve: usage errors exit 2 with a message", () => {
  const r1 = spawnSync(bin, ["store", "serve", "--data-dir", "/tmp/x", "--port", "http"], {
    encoding: "utf8",
    env,
  });
  assert.equal(r1.status, 2);
  assert.match(r1.stderr, /invalid --port "http"/);
  const r2 = spawnSync(bin, ["store", "serve", "--data-dir", "/tmp/x", "--secret-key", "s"], {
    encoding: "utf8",
    env,
  });
  assert.equal(r2.status, 2);
  assert.match(r2.stderr, /--access-key and --secret-key go together/);
  const r3 = spawnSync(bin, ["store", "serve"], { encoding: "utf8", env });
  assert.notEqual(r3.status, 0);
  assert.match(r3.stderr, /--data-dir/);
});

test("scar store serve: port 0 prints the URL it took, serves S3, stops cleanly on SIGTERM", async () => {
  const dir = mkdtempSync(join(tmpdir(), "scar-serve-"));
  try {
    const child = spawn(bin, ["store", "serve", "--data-dir", dir, "--port", "0"], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
        const m = /listening on (http:\/\/127\.0\.0\.1:(\d+))/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on("exit", (c) => reject(new Error(`exited ${c}`)));
    });
    assert.doesNotMatch(url, /:9000$/);
    // Unsigned requests are refused with S3's XML, which shows an S3 server is answering.
    const r = await fetch(`${url}/`);
    assert.equal(r.status, 403);
    assert.match(await r.text(), /<Code>AccessDenied<\/Code>/);
    assert.ok(existsSync(join(dir, ".scar-store", "lock")));
    const code = await new Promise<number | null>((resolve) => {
      child.on("exit", (c) => resolve(c));
      child.kill("SIGTERM");
    });
    assert.equal(code, 0);
    assert.ok(!existsSync(join(dir, ".scar-store", "lock")), "lock released");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
