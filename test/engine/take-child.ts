/**
 * Child of staging-crash.test.ts: opens a store on argv[2] and stages out files of argv[3] into
 * bucket "out" as the engine does (EmbeddedStoreProvider.upload with consume: renamed into the
 * store; with argv[4] "copy", copied), four at a time, printing each key once its upload has returned
 * (acknowledged), until killed.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { EmbeddedStoreProvider } from "../../src/engine/embedded-provider.js";
import { startStore } from "../../src/engine/store/index.js";

const [dataDir, srcDir, mode] = process.argv.slice(2) as [string, string, string?];
// "copy": the outputs are copied (as from an environment's own disk) into temp files made ahead
const consume = mode !== "copy";
const store = await startStore({ dataDir, host: "127.0.0.1", port: 0 });
if (!store.backend.buckets.has("out")) await store.backend.createBucket("out");
const provider = new EmbeddedStoreProvider("s3.default", store.backend);
let next = 0;
await Promise.all(
  Array.from({ length: 4 }, async () => {
    for (;;) {
      const key = `k${next++}`;
      const src = join(srcDir, key);
      writeFileSync(src, contentOf(key));
      await provider.upload(src, "out", key, { consume });
      process.stdout.write(`${key}\n`);
    }
  }),
);

export function contentOf(key: string): string {
  return `${key}:`.repeat(50 + ((key.length * 37) % 400));
}
