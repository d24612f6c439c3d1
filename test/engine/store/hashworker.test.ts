// Large bodies are hashed on a worker thread: same digests as hashing in place, bad digests still
// refused, and the worker does not keep the process alive.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { checksumOf } from "../../../src/engine/store/checksums.js";
import { RemoteHash } from "../../../src/engine/store/hashworker.js";
import { withStore } from "./helpers.js";

test("the hash worker's digests equal in-place ones, for any size and chunking", async () => {
  for (const size of [0, 1, (1 << 20) - 1, 1 << 20, (9 << 20) + 7]) {
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i++) data[i] = (i * 31 + (i >> 9)) & 0xff;
    const h = new RemoteHash(["md5", "sha256", "crc32", "crc32c"]);
    // Uneven chunks, as sockets deliver them.
    for (let off = 0; off < size; ) {
      const n = Math.min(size - off, 1 + ((off * 7) % 200_000));
      h.update(data.subarray(off, off + n));
      off += n;
      await h.ready();
    }
    const [md5, sha, crc, crcc] = await h.finish();
    assert.equal(md5!.toString("hex"), createHash("md5").update(data).digest("hex"), `md5 of ${size}`);
    assert.equal(sha!.toString("hex"), createHash("sha256").update(data).digest("hex"));
    assert.equal(crc!.toString("base64"), checksumOf("crc32", data));
    assert.equal(crcc!.toString("base64"), checksumOf("crc32c", data));
  }
});

test("large PUTs: ETag, checksums and Content-MD5 are checked as for small ones", async () => {
  const t = await withStore();
  try {
    await t.store.backend.createBucket("big");
    const body = Buffer.alloc(6 << 20, "z");
    body.write("a different start", 0);
    const md5 = createHash("md5").update(body).digest();
    const put = await t.s3.send(
      new PutObjectCommand({
        Bucket: "big",
        Key: "six",
        Body: body,
        ContentMD5: md5.toString("base64"),
        ChecksumAlgorithm: "CRC32C",
      }),
    );
    assert.equal(put.ETag, `"${md5.toString("hex")}"`);
    assert.equal(put.ChecksumCRC32C, checksumOf("crc32c", body));
    const got = await t.s3.send(new GetObjectCommand({ Bucket: "big", Key: "six" }));
    assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(body));
    await assert.rejects(
      t.s3.send(
        new PutObjectCommand({
          Bucket: "big",
          Key: "bad",
          Body: body,
          ContentMD5: createHash("md5").update("something else").digest("base64"),
        }),
      ),
      (e: Error) => e.name === "BadDigest",
    );
  } finally {
    await t.stop();
  }
});
