/**
 * A benchmark's uploader in a worker thread: PutObject of `count` small objects (`${prefix}${i}.txt`,
 * body `file ${i}`) with `inFlight` requests at a time through the AWS SDK, then posts the seconds it
 * took and the CPU ms this thread used from its start (module loading included) (so a benchmark can leave the client's work out of the
 * engine's CPU). The uploads come from another thread, as they come from other processes (`aws s3 cp`, a
 * script) in real use, so the SDK's signing and checksums do not run on the engine's main thread.
 */
import { readFileSync } from "node:fs";
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
/** This thread's CPU ms (user + system, 10 ms ticks). */
function threadCpuMs(): number {
  const f = readFileSync("/proc/thread-self/stat", "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

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
parentPort!.postMessage({ secs: (performance.now() - t0) / 1000, cpuMs: threadCpuMs() });
