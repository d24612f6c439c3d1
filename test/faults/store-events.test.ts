// Event identity never repeats, even when the journal's counter is lost (a damaged or repaired
// journal): an upload after such a restart still gets a job, not a dedupe hit on an old one.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { PutBucketNotificationConfigurationCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { JobStore } from "../../src/engine/jobs/index.js";
import type { StoreEvent } from "../../src/engine/store/index.js";
import { readJournal, rewriteJournal } from "../../src/engine/store/journal.js";
import { withStore } from "../engine/store/helpers.js";

test("after the journal's event counter is lost, new uploads still get new event ids and new jobs", async () => {
  const dir = mkdtempSync(join(tmpdir(), "scar-fault-events-"));
  const storeDir = join(dir, "store");
  const jobs = JobStore.open({ dataDir: join(dir, "jobs") });
  const seen: { id: string; created: boolean }[] = [];
  // The engine's hook, on a real job database: one job per event, deduplicated by the event id.
  const onCommit = (events: StoreEvent[]) => {
    for (const e of events) {
      const r = jobs.enqueue({
        function: "fn",
        trigger: { type: "object", bucket: e.bucket, key: e.key },
        payload: { Records: [e.record] },
        dedupeKey: `store-event:${e.id}`,
      });
      seen.push({ id: e.id, created: r.created });
    }
  };
  try {
    const a = await withStore({ dataDir: storeDir, onCommit });
    await a.store.backend.createBucket("in");
    await a.s3.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: "in",
        NotificationConfiguration: {
          QueueConfigurations: [
            { QueueArn: "arn:aws:sqs:us-east-1:000000000000:q", Events: ["s3:ObjectCreated:*"] },
          ],
        },
      }),
    );
    for (const k of ["one", "two", "three"])
      await a.s3.send(new PutObjectCommand({ Bucket: "in", Key: k, Body: k }));
    await a.stop();
    // A restart compacts the journal: the objects' records no longer carry their events, so the
    // "seq" record is all that remembers the counter.
    await (await withStore({ dataDir: storeDir, onCommit })).stop();

    // Lose the counter: the journal keeps every bucket and object but no "seq" record, as after a
    // repair that dropped a damaged last line.
    const journal = join(storeDir, ".scar-store", "journal");
    const records = readJournal(journal).records as { op: string }[];
    assert.ok(records.some((r) => r.op === "seq"));
    rewriteJournal(
      journal,
      records.filter((r) => r.op !== "seq"),
    );

    const b = await withStore({ dataDir: storeDir, onCommit });
    await b.s3.send(new PutObjectCommand({ Bucket: "in", Key: "four", Body: "four" }));
    await b.stop();

    assert.equal(seen.length, 4);
    assert.equal(new Set(seen.map((s) => s.id)).size, 4, `event ids repeat: ${seen.map((s) => s.id)}`);
    assert.deepEqual(
      seen.map((s) => s.created),
      [true, true, true, true],
      "an upload after the restart was deduplicated into an old job",
    );
    assert.equal(jobs.counts().fn?.queued, 4);
  } finally {
    jobs.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
