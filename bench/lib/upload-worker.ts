/**
 * A benchmark's uploader in a worker thread: PutObject of `count` small objects (`${prefix}${i}.txt`,
 * body `file ${i}`) with `inFlight` requests at a time through the AWS SDK, then posts the seconds it
 * took. The uploads come from another thread, as they come from other processes (`aws s3 cp`, a
 * script) in real use, so the SDK's signing and checksums do not run on the engine's main thread.
 */
import { parentPort, workerData } from "node:worker_threads";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";

export interface UploadJob {
  endpoint: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  bucket: string;
  prefix: string;
  count: number;
  inFlight: number;
}

const job = workerData as UploadJob;
const s3 = new S3Client({
  endpoint: job.endpoint,
  region: "us-east-1",
  forcePathStyle: true,
  credentials: job.credentials,
});
const t0 = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: job.inFlight }, async () => {
    while (next < job.count) {
      const i = next++;
      await s3.send(
        new PutObjectCommand({ Bucket: job.bucket, Key: `${job.prefix}${i}.txt`, Body: `file ${i}` }),
      );
    }
  }),
);
s3.destroy();
parentPort!.postMessage((performance.now() - t0) / 1000);
