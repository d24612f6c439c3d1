/**
 * What the runtime fault tests share: a busybox image, the embedded object store with a real S3
 * client, and one Runner per OCI runtime (crun and runc), so each fault is shown with both.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { ContainerExecutor, type ContainerFunction } from "../../src/engine/container-executor.js";
import { Runner } from "../../src/engine/runtime/index.js";
import { type RunningStore, startStore } from "../../src/engine/store/index.js";
import { parseFdl } from "../../src/fdl/index.js";
import type { FunctionSpec } from "../../src/fdl/spec.js";
import { S3Provider } from "../../src/storage/s3.js";
import { type InvocationRequest, invoke } from "../../src/supervisor/index.js";
import { type Fixture, makeFixture } from "../engine/runtime/fixtures.js";

export { hostProcesses } from "../engine/runtime/fixtures.js";

export const RUNTIMES = ["crun", "runc"] as const;

export interface Harness {
  root: string;
  fixture: Fixture;
  runners: Record<(typeof RUNTIMES)[number], Runner>;
  s3: S3Client;
  /**
   * an FDL function named `name` with `lambda` lines (6-space indent), an init script, and extra
   * `container` lines (8-space indent)
   */
  fn(name: string, lambda: string, script: string, container?: string): FunctionSpec;
  run(
    runtime: (typeof RUNTIMES)[number],
    f: FunctionSpec,
    event: unknown,
    extra?: Partial<InvocationRequest>,
    container?: Partial<ContainerFunction>,
  ): ReturnType<typeof invoke>;
  /** keys under `prefix` in the bucket "media" */
  keys(prefix: string): Promise<string[]>;
  get(key: string): Promise<string>;
  close(): Promise<void>;
}

export async function openHarness(): Promise<Harness> {
  const root = mkdtempSync(join(tmpdir(), "scar-faults-rt-"));
  const fixture = makeFixture();
  const runners = {
    crun: await Runner.open({ stateDir: join(root, "rt-crun"), runtime: "crun" }),
    runc: await Runner.open({ stateDir: join(root, "rt-runc"), runtime: "runc" }),
  };
  const store: RunningStore = await startStore({ dataDir: join(root, "store"), host: "127.0.0.1", port: 0 });
  const credentials = { accessKeyId: "scar", secretAccessKey: "scar-secret-key" };
  const s3 = new S3Client({ endpoint: store.url, region: "us-east-1", forcePathStyle: true, credentials });
  const provider = new S3Provider("s3.default", { endpoint: store.url, ...credentials });
  await s3.send(new CreateBucketCommand({ Bucket: "media" }));
  return {
    root,
    fixture,
    runners,
    s3,
    fn(name, lambda, script, container = "") {
      const dir = mkdtempSync(join(root, "fdl-"));
      writeFileSync(join(dir, "script.sh"), script);
      const yaml = `functions:\n  aws:\n  - lambda:\n      name: ${name}\n      memory: 128\n      container:\n        image: busybox\n${container}      init_script: script.sh\n${lambda}`;
      const file = join(dir, "fn.yaml");
      writeFileSync(file, yaml);
      return parseFdl(file, yaml).functions[0]!;
    },
    run(runtime, f, event, extra = {}, container = {}) {
      const executor = new ContainerExecutor(runners[runtime], {
        image: fixture.image,
        memoryMiB: f.memory,
        ...container,
      });
      return invoke({
        fn: f,
        event,
        executor,
        storage: () => provider,
        workRoot: join(root, "work"),
        removeWorkspace: (r) => runners[runtime].discardFolder(r),
        ...extra,
      });
    },
    async keys(prefix) {
      const r = await s3.send(new ListObjectsV2Command({ Bucket: "media", Prefix: prefix }));
      return (r.Contents ?? []).map((o) => o.Key!).sort();
    },
    async get(key) {
      const r = await s3.send(new GetObjectCommand({ Bucket: "media", Key: key }));
      return r.Body!.transformToString();
    },
    async close() {
      provider.destroy();
      s3.destroy();
      await store.close();
      for (const r of Object.values(runners)) await r.close();
      fixture.cleanup();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
