// kill -9 of `scar store serve` in the middle of uploads: after a restart no partial object exists,
// every acknowledged object is there byte for byte, and every object has its event in the event log.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutBucketNotificationConfigurationCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";

const bin = new URL("../../../../bin/scar", import.meta.url).pathname;
const creds = { accessKeyId: "crashkey", secretAccessKey: "crashsecret" };

function serve(dir: string, eventLog: string): Promise<{ child: ChildProcess; url: string }> {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const child = spawn(
    bin,
    [
      "store",
      "serve",
      "--data-dir",
      dir,
      "--port",
      "0",
      "--access-key",
      creds.accessKeyId,
      "--secret-key",
      creds.secretAccessKey,
      "--event-log",
      eventLog,
    ],
    { env, stdio: ["ignore", "pipe", "pipe"] },
  );
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1]! });
    });
    child.stderr!.on("data", (d) => process.stderr.write(d));
    child.on("exit", (code) => reject(new Error(`store exited early with ${code}: ${out}`)));
  });
}

/** Deterministic content per key, so any object can be checked for completeness. */
function content(key: string): Buffer {
  const n = 1000 + createHash("md5").update(key).digest()[0]! * 3000;
  return Buffer.alloc(n, key);
}

function client(url: string) {
  return new S3Client({
    endpoint: url,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: creds,
    maxAttempts: 1,
  });
}

test("crash safety: kill -9 during uploads loses no acknowledged object or event and leaves no partial one", async () => {
  const dir = mkdtempSync(join(tmpdir(), "scar-crash-"));
  const eventLog = join(dir, "..", `${dir.split("/").pop()}-events.jsonl`);
  try {
    const first = await serve(dir, eventLog);
    const s3 = client(first.url);
    await s3.send(new CreateBucketCommand({ Bucket: "crash" }));
    await s3.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: "crash",
        NotificationConfiguration: {
          QueueConfigurations: [
            { QueueArn: "arn:aws:sqs:us-east-1:000000000000:q", Events: ["s3:ObjectCreated:*"] },
          ],
        },
      }),
    );
    const acked = new Set<string>();
    let stop = false;
    const writers = Array.from({ length: 6 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const key = `w${w}/obj-${i}`;
        try {
          await s3.send(new PutObjectCommand({ Bucket: "crash", Key: key, Body: content(key) }));
          acked.add(key);
        } catch {
          return;
        }
      }
    });
    // A large upload that is certainly in flight when the process dies.
    const big = s3
      .send(
        new PutObjectCommand({
          Bucket: "crash",
          Key: "big-in-flight",
          Body: Buffer.alloc(64 * 1024 * 1024, 7),
        }),
      )
      .then(() => acked.add("big-in-flight"))
      .catch(() => {});
    while (acked.size < 60) await new Promise((r) => setTimeout(r, 5));
    first.child.kill("SIGKILL");
    stop = true;
    await Promise.all([...writers, big]);
    s3.destroy();
    const ackedNow = new Set(acked);

    const second = await serve(dir, eventLog);
    const s3b = client(second.url);
    try {
      const listed: string[] = [];
      let token: string | undefined;
      do {
        const r = await s3b.send(new ListObjectsV2Command({ Bucket: "crash", ContinuationToken: token }));
        listed.push(...(r.Contents ?? []).map((c) => c.Key!));
        token = r.NextContinuationToken;
      } while (token);
      for (const k of ackedNow) assert.ok(listed.includes(k), `acknowledged object ${k} survived`);
      for (const k of listed) {
        const body = Buffer.from(
          await (
            await s3b.send(new GetObjectCommand({ Bucket: "crash", Key: k }))
          ).Body!.transformToByteArray(),
        );
        const want = k === "big-in-flight" ? Buffer.alloc(64 * 1024 * 1024, 7) : content(k);
        assert.ok(body.equals(want), `object ${k} is complete`);
      }
      assert.deepEqual(readdirSync(join(dir, ".scar-store", "tmp")), [], "no temp files left");
      const events = readFileSync(eventLog, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      const evKeys = new Set(events.map((e: { key: string }) => e.key));
      for (const k of listed) assert.ok(evKeys.has(k), `event delivered for ${k}`);
      assert.ok(
        events.every((e: { record: { eventName: string } }) => e.record.eventName === "s3:ObjectCreated:Put"),
      );
    } finally {
      s3b.destroy();
      second.child.kill("SIGTERM");
      await new Promise((r) => second.child.once("exit", r));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (existsSync(eventLog)) rmSync(eventLog);
  }
});
