// `scar store serve`: argument errors, a free port with --port 0, clean shutdown on SIGTERM.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
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

test("scar store serve --credentials-file: each profile's user owns its buckets; others get AccessDenied", async () => {
  const dir = mkdtempSync(join(tmpdir(), "scar-serve-users-"));
  const home = mkdtempSync(join(tmpdir(), "scar-serve-home-"));
  try {
    const file = join(home, "store-users");
    writeFileSync(
      file,
      "[admin]\naws_access_key_id = ADMINKEY\naws_secret_access_key = admin-secret\n" +
        "[alice]\naws_access_key_id = ALICEKEY\naws_secret_access_key = alice-secret\n" +
        "[alice-2]\nuser = alice\naws_access_key_id = ALICEKEY2\naws_secret_access_key = alice-secret-2\n",
    );
    const bad = join(home, "bad");
    writeFileSync(bad, "[x]\naws_access_key_id = K\n");
    const r = spawnSync(bin, ["store", "serve", "--data-dir", dir, "--credentials-file", bad], {
      encoding: "utf8",
      env,
    });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--credentials-file: .*\[x\] needs aws_access_key_id and aws_secret_access_key/);

    const child = spawn(
      bin,
      ["store", "serve", "--data-dir", dir, "--port", "0", "--credentials-file", file],
      {
        env,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (d) => {
          out += d;
          const m = /listening on (http:\/\/127\.0\.0\.1:\d+) .*3 key pairs/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.on("exit", (c) => reject(new Error(`exited ${c}`)));
      });
      const aws = (key: string, secret: string, args: string[]) =>
        spawnSync("aws", ["--endpoint-url", url, ...args], {
          encoding: "utf8",
          env: {
            ...env,
            HOME: home,
            AWS_ACCESS_KEY_ID: key,
            AWS_SECRET_ACCESS_KEY: secret,
            AWS_DEFAULT_REGION: "us-east-1",
            AWS_EC2_METADATA_DISABLED: "true",
            AWS_CONFIG_FILE: join(home, "none"),
            AWS_SHARED_CREDENTIALS_FILE: join(home, "none"),
          },
        });
      const mb = aws("ALICEKEY", "alice-secret", ["s3", "mb", "s3://alice-b"]);
      assert.equal(mb.status, 0, mb.stderr);
      const second = aws("ALICEKEY2", "alice-secret-2", ["s3", "ls"]);
      assert.match(second.stdout, /alice-b/);
      const admin = aws("ADMINKEY", "admin-secret", ["s3", "ls", "s3://alice-b"]);
      assert.notEqual(admin.status, 0);
      assert.match(admin.stderr, /AccessDenied/);
    } finally {
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.on("exit", () => resolve());
        child.kill("SIGTERM");
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  }
});
