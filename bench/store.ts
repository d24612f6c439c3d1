/**
 * Object store benchmark: scar's store, s3rver and the raw file system, side by side in one run, on
 * the same mix: 1,000 x 4 KiB PUT+GET, 100 x 1 MiB PUT+GET, 1 x 1 GiB PUT+GET (SCAR_BENCH_BIG_MIB
 * changes the size). Both servers get the same minimal SigV4 client (UNSIGNED-PAYLOAD, keep-alive,
 * 16 requests in flight), so client cost is equal. The raw baseline writes each file to a temp name,
 * fdatasyncs and renames it (what a durable store must do at least), then reads it back.
 *
 * The machine may be busy, so the targets take turns case by case (scar, s3rver, raw fs for the
 * 4 KiB mix, then the same for 1 MiB, ...), SCAR_BENCH_REPEAT times (default 1) after one uncounted
 * warm-up round, each round starting with the next target, and the ratios are the medians of each
 * round's ratios. CPU time is this process's user+system time during the case
 * (client and server together; the client is the same for both S3 servers); the load average is
 * printed before and after.
 */
import { createHash, createHmac } from "node:crypto";
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { mkdir, open, rename } from "node:fs/promises";
import { Agent, request } from "node:http";
import { createRequire } from "node:module";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { startStore } from "../src/engine/store/index.js";

interface Target {
  name: string;
  put(key: string, body: Buffer | (() => Readable), size: number): Promise<void>;
  get(key: string): Promise<number>;
  close(): Promise<void>;
}

const hex = (b: string | Buffer) => createHash("sha256").update(b).digest("hex");
const hmac = (k: Buffer | string, s: string) => createHmac("sha256", k).update(s).digest();

function s3Target(
  name: string,
  port: number,
  ak: string,
  sk: string,
  bucket: string,
  close: () => Promise<void>,
): Target {
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  let keyDate = "";
  let key = Buffer.alloc(0);
  const sign = (method: string, path: string, extra: Record<string, string>) => {
    const amzDate = new Date().toISOString().replace(/[-:]|\.\d{3}/g, "");
    const date = amzDate.slice(0, 8);
    const scope = `${date}/us-east-1/s3/aws4_request`;
    const headers: Record<string, string> = {
      host: `127.0.0.1:${port}`,
      "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
      "x-amz-date": amzDate,
    };
    const names = Object.keys(headers).sort();
    const canonical = [
      method,
      path,
      "",
      ...names.map((h) => `${h}:${headers[h]}`),
      "",
      names.join(";"),
      "UNSIGNED-PAYLOAD",
    ].join("\n");
    // Real clients (the AWS SDKs) derive the signing key once per day, not once per request.
    if (date !== keyDate) {
      keyDate = date;
      key = hmac(hmac(hmac(hmac(`AWS4${sk}`, date), "us-east-1"), "s3"), "aws4_request");
    }
    const sig = hmac(key, `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${hex(canonical)}`).toString("hex");
    return {
      ...headers,
      ...extra,
      authorization: `AWS4-HMAC-SHA256 Credential=${ak}/${scope}, SignedHeaders=${names.join(";")}, Signature=${sig}`,
    };
  };
  return {
    name,
    put(key, body, size) {
      const path = `/${bucket}/${key}`;
      return new Promise((resolve, reject) => {
        const req = request(
          {
            host: "127.0.0.1",
            port,
            method: "PUT",
            path,
            agent,
            headers: sign("PUT", path, { "content-length": String(size) }),
          },
          (res) => {
            res.resume();
            res.on("end", () =>
              res.statusCode === 200 ? resolve() : reject(new Error(`${name} PUT ${res.statusCode}`)),
            );
          },
        );
        req.on("error", reject);
        if (Buffer.isBuffer(body)) req.end(body);
        else pipeline(body(), req).catch(reject);
      });
    },
    get(key) {
      const path = `/${bucket}/${key}`;
      return new Promise((resolve, reject) => {
        const req = request(
          { host: "127.0.0.1", port, method: "GET", path, agent, headers: sign("GET", path, {}) },
          (res) => {
            let n = 0;
            res.on("data", (d: Buffer) => {
              n += d.length;
            });
            res.on("end", () =>
              res.statusCode === 200 ? resolve(n) : reject(new Error(`${name} GET ${res.statusCode}`)),
            );
          },
        );
        req.on("error", reject);
        req.end();
      });
    },
    async close() {
      agent.destroy();
      await close();
    },
  };
}

function rawTarget(dir: string): Target {
  let n = 0;
  return {
    name: "raw fs",
    async put(key, body) {
      const final = join(dir, key);
      const tmp = join(dir, `.tmp-${n++}`);
      await mkdir(join(final, ".."), { recursive: true });
      const fh = await open(tmp, "w");
      try {
        if (Buffer.isBuffer(body)) await fh.write(body);
        else await pipeline(body(), createWriteStream("", { fd: fh.fd, autoClose: false }));
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await rename(tmp, final);
    },
    async get(key) {
      const p = join(dir, key);
      let size = 0;
      await pipeline(
        createReadStream(p, { highWaterMark: 1 << 20 }),
        new Writable({
          write(c: Buffer, _e, cb) {
            size += c.length;
            cb();
          },
        }),
      );
      return size;
    },
    async close() {},
  };
}

async function pool<T>(items: T[], width: number, fn: (x: T) => Promise<unknown>) {
  let i = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

function zeros(total: number): () => Readable {
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  return () =>
    Readable.from(
      (function* () {
        for (let left = total; left > 0; left -= chunk.length)
          yield left >= chunk.length ? chunk : chunk.subarray(0, left);
      })(),
    );
}

interface Result {
  mix: string;
  target: string;
  seconds: number;
  mibPerS: number;
  opsPerS: number;
  peakRssMiB: number;
  cpuSeconds: number;
  round: number;
}

async function runMix(
  t: Target,
  mix: string,
  count: number,
  size: number,
  width: number,
  round: number,
): Promise<Result> {
  const body = size <= 8 << 20 ? Buffer.alloc(size, 0x61) : null;
  const keys = Array.from({ length: count }, (_, i) => `${mix}/obj-${i}`);
  // Peak resident memory of this process (servers and client together): constant memory means it
  // does not grow with the object size.
  let peak = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 50);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  try {
    await pool(keys, width, (k) => t.put(k, body ?? zeros(size), size));
    await pool(keys, width, async (k) => {
      const got = await t.get(k);
      if (got !== size) throw new Error(`${t.name}: ${k} came back with ${got} bytes`);
    });
  } finally {
    clearInterval(sampler);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return {
    round,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    mix,
    target: t.name,
    seconds,
    mibPerS: (2 * count * size) / (1 << 20) / seconds,
    opsPerS: (2 * count) / seconds,
    peakRssMiB: peak / (1 << 20),
  };
}

async function main() {
  const bigMiB = Number(process.env.SCAR_BENCH_BIG_MIB ?? 1024);
  const root = mkdtempSync(join(tmpdir(), "scar-bench-store-"));
  const targets: (() => Promise<Target>)[] = [
    async () => {
      const s = await startStore({
        dataDir: join(root, "scar"),
        port: 0,
        credentials: { accessKeyId: "bench", secretAccessKey: "benchsecret" },
      });
      await s.backend.createBucket("bench");
      return s3Target("scar store", s.port, "bench", "benchsecret", "bench", () => s.close());
    },
    async () => {
      const require = createRequire(import.meta.url);
      const S3rver = require("s3rver");
      const s = new S3rver({
        port: 0,
        address: "127.0.0.1",
        directory: join(root, "s3rver"),
        silent: true,
        configureBuckets: [{ name: "bench" }],
      });
      const addr = await s.run();
      return s3Target("s3rver", addr.port, "S3RVER", "S3RVER", "bench", () => s.close());
    },
    async () => rawTarget(join(root, "raw")),
  ];
  // SCAR_BENCH_BASELINE=<another build's dist/src/engine/store/index.js> adds that build as one more
  // target, "scar before", so a change is measured against the code before it in the same run.
  const baseline = process.env.SCAR_BENCH_BASELINE;
  if (baseline) {
    targets.push(async () => {
      const { startStore: startBefore } = (await import(baseline)) as { startStore: typeof startStore };
      const s = await startBefore({
        dataDir: join(root, "scar-before"),
        port: 0,
        credentials: { accessKeyId: "bench", secretAccessKey: "benchsecret" },
      });
      await s.backend.createBucket("bench");
      return s3Target("scar before", s.port, "bench", "benchsecret", "bench", () => s.close());
    });
  }
  // SCAR_BENCH_MIXES=4KiB,1MiB runs only those mixes.
  const wanted = process.env.SCAR_BENCH_MIXES?.split(",");
  const mixes = (
    [
      ["4KiB", 1000, 4096, 16],
      ["1MiB", 100, 1 << 20, 16],
      [`${bigMiB}MiB`, 1, bigMiB * 1024 * 1024, 1],
    ] as [string, number, number, number][]
  ).filter(([m]) => !wanted || wanted.includes(m));
  const results: Result[] = [];
  const rounds = Math.max(1, Number(process.env.SCAR_BENCH_REPEAT ?? 1));
  const load = () =>
    loadavg()
      .map((x) => x.toFixed(2))
      .join(" ");
  console.log(`load average before: ${load()}`);
  const open: Target[] = [];
  try {
    // SCAR_BENCH_ONLY=scar runs just scar's store (for profiling); ratios then need the peers.
    const only = process.env.SCAR_BENCH_ONLY;
    for (const make of only === "before" ? targets.slice(-1) : only ? targets.slice(0, 1) : targets)
      open.push(await make());
    // Round 0 warms up (JIT, file system) and is not counted; each round starts with another target,
    // so no target always pays for going first.
    for (let round = 0; round <= rounds; round++) {
      for (const [mix, count, size, width] of mixes) {
        for (let j = 0; j < open.length; j++) {
          const t = open[(round + j) % open.length]!;
          const r = await runMix(t, mix, count, size, width, round);
          if (round > 0) results.push(r);
          console.log(
            `#${round} ${r.target.padEnd(11)} ${mix.padEnd(8)} ${r.seconds.toFixed(2).padStart(7)} s ${r.mibPerS.toFixed(1).padStart(8)} MiB/s ${r.opsPerS.toFixed(0).padStart(7)} ops/s  cpu ${r.cpuSeconds.toFixed(2).padStart(6)} s  peak RSS ${r.peakRssMiB.toFixed(0)} MiB`,
          );
        }
      }
    }
  } finally {
    for (const t of open) await t.close();
    rmSync(root, { recursive: true, force: true });
  }
  console.log(`load average after: ${load()}`);
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
  };
  console.log(
    `\nratios, median of ${rounds} round(s) (scar store throughput / peer throughput; > 1 means scar is faster); cpu = median CPU seconds`,
  );
  for (const [mix] of process.env.SCAR_BENCH_ONLY ? [] : mixes) {
    const by = (n: string, round: number) =>
      results.find((r) => r.mix === mix && r.target === n && r.round === round)!;
    const ratios = (n: string) =>
      median(
        Array.from({ length: rounds }, (_, i) => by("scar store", i + 1).mibPerS / by(n, i + 1).mibPerS),
      );
    const cpu = (n: string) => median(Array.from({ length: rounds }, (_, i) => by(n, i + 1).cpuSeconds));
    console.log(
      `${mix.padEnd(8)} vs s3rver ${ratios("s3rver").toFixed(2)}x   vs raw fs ${ratios("raw fs").toFixed(2)}x   cpu scar ${cpu("scar store").toFixed(2)} s, s3rver ${cpu("s3rver").toFixed(2)} s, raw fs ${cpu("raw fs").toFixed(2)} s`,
    );
    if (baseline) {
      console.log(
        `${"".padEnd(8)} before: vs s3rver ${(ratios("s3rver") / ratios("scar before")).toFixed(2)}x   vs raw fs ${(ratios("raw fs") / ratios("scar before")).toFixed(2)}x   cpu ${cpu("scar before").toFixed(2)} s; now vs before ${ratios("scar before").toFixed(2)}x`,
      );
    }
  }
}

await main();
