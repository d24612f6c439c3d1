/**
 * OSCAR's own clients against the engine's API: oscar-cli's exact JSON (OSCAR's Service as Go's
 * json.Marshal writes it, zero values and all), oscar_python's requests, and the answers checked
 * against OSCAR's Go types (go-json.ts) the way oscar-cli decodes them.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { type Json, useApiEngine, waitFor } from "./api-harness.js";
import {
  CONFIG_FOR_USER,
  DEPLOYMENT_STATUS,
  goDecodeErrors,
  JOBS_INFO,
  MINIO_BUCKET,
  oscarCliService,
  oscarV4Service,
  SERVICE_V3,
  SERVICE_V4,
  STATUS_INFO,
} from "./go-json.js";

const IMAGE = "localhost/scar-test/busybox:oscar-clients";
const t = useApiEngine({ prefix: "scar-oscar-clients-", image: IMAGE });
const call = t.call;

async function json(method: string, path: string, body?: object): Promise<Json> {
  const r = await call(method, path, body === undefined ? {} : { body });
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${await r.clone().text()}`);
  return r.json();
}

function decodes(value: unknown, type: Parameters<typeof goDecodeErrors>[1]): void {
  assert.deepEqual(goDecodeErrors(value, type), []);
}

test("the Go checker refuses what Go's decoder refuses", () => {
  // (so the checks below can fail)
  assert.equal(goDecodeErrors({ memory: 256 }, SERVICE_V4).length, 1);
  assert.equal(goDecodeErrors({ allowed_users: "x" }, SERVICE_V4).length, 1);
  assert.equal(goDecodeErrors({ Synchronous: { min_scale: 1.5 } }, SERVICE_V4).length, 1);
  assert.deepEqual(goDecodeErrors({ labels: null, unknown: 1 }, SERVICE_V4), []);
});

test("oscar-cli apply: a service without variables, inputs or outputs (Go's zero values) is created, then edited", async () => {
  const cowsay = oscarCliService({
    name: "cowsay",
    image: IMAGE,
    script: "echo moo\n",
    clusterId: "scar-local",
    endpoint: t.api.url,
  });
  // apply asks first whether the service exists, then POSTs (or PUTs)
  assert.equal((await call("GET", "/system/services/cowsay")).status, 404);
  const created = await call("POST", "/system/services", { body: cowsay });
  assert.equal(created.status, 201, await created.text());
  const s = await json("GET", "/system/services/cowsay");
  decodes(s, SERVICE_V3);
  decodes(s, SERVICE_V4);
  assert.equal(s.cluster_id, "scar-local");
  assert.equal(s.memory, "256Mi", "'' is OSCAR's default");
  assert.equal(s.cpu, "0.2");
  assert.equal(s.log_level, "INFO");
  assert.deepEqual(s.input, []);
  assert.deepEqual(s.environment.variables, {});
  assert.deepEqual(s.clusters, cowsay.clusters, "what the client sent comes back");
  // nodePort 0 (OSCAR 3's int, OSCAR 4's list) is left out: each version reads its zero value
  const { nodePort: _zero, ...expose } = cowsay.expose as Record<string, unknown>;
  assert.deepEqual(s.expose, expose);
  assert.deepEqual(s.mount, { storage_provider: "", path: "" });
  // the edit, as apply sends it when the service exists
  const edited = await call("PUT", "/system/services", { body: { ...cowsay, memory: "512Mi" } });
  assert.equal(edited.status, 204, await edited.text());
  assert.equal((await json("GET", "/system/services/cowsay")).memory, "512Mi");
  const twice = await call("POST", "/system/services", { body: cowsay });
  assert.equal(twice.status, 409);
  assert.match((await twice.json()).error, /already exists/);
});

test("OSCAR v4's JSON: variables, secrets null, inputs with null suffixes, storage_providers {}", async () => {
  const svc = oscarV4Service({
    name: "grey-v4",
    image: IMAGE,
    script: 'cat "$INPUT_FILE_PATH"\n',
    clusterId: "scar-local",
    endpoint: t.api.url,
    variables: { A: "1" },
    input: [{ storage_provider: "minio.default", path: "greyv4/in", suffix: null, prefix: null }],
    output: [{ storage_provider: "minio", path: "greyv4/out" }],
  });
  const r = await call("POST", "/system/services", { body: svc });
  assert.equal(r.status, 201, await r.text());
  const s = await json("GET", "/system/services/grey-v4");
  decodes(s, SERVICE_V4);
  assert.deepEqual(s.environment, { variables: { A: "1" }, secrets: {} });
  assert.deepEqual(s.input, [{ storage_provider: "minio.default", path: "greyv4/in" }]);
});

test("GET gives the whole Service: what was sent, OSCAR's defaults, minio.default; a round trip keeps it", async () => {
  const sent = {
    name: "everything-oscar",
    cluster_id: "edge-1",
    image: IMAGE,
    script: "echo hi\n",
    memory: "128Mi",
    cpu: "0.5",
    log_level: "DEBUG",
    alpine: false,
    enable_gpu: false,
    synchronous: { min_scale: 1, max_scale: 3 },
    expose: { min_scale: 1, max_scale: 2, api_port: [8080], cpu_threshold: 80, set_auth: true },
    environment: { variables: { MODE: "x" }, secrets: { API_KEY: "s3cr3t" } },
    annotations: { "example.org/a": "b" },
    labels: { team: "blue" },
    vo: "vo.example.org",
    owner: "someone",
    visibility: "restricted",
    allowed_users: ["alice@example.org"],
    isolation_level: "SERVICE",
    mount: { storage_provider: "minio.default", path: "everything/mnt" },
    image_pull_secrets: ["regcred"],
    input: [{ storage_provider: "minio.default", path: "everything/in" }],
    output: [{ storage_provider: "s3.other", path: "other-bucket/out", suffix: [".txt"] }],
    storage_providers: {
      s3: { other: { access_key: "AK", secret_key: "SK", region: "eu-west-1" } },
    },
  };
  const r = await call("POST", "/system/services", { body: sent });
  assert.equal(r.status, 201, await r.text());
  const s = await json("GET", "/system/services/everything-oscar");
  decodes(s, SERVICE_V4);
  for (const k of [
    "cluster_id",
    "synchronous",
    "expose",
    "annotations",
    "labels",
    "vo",
    "owner",
    "visibility",
    "allowed_users",
    "isolation_level",
    "mount",
    "image_pull_secrets",
    "alpine",
    "enable_gpu",
    "log_level",
  ])
    assert.deepEqual(s[k], sent[k as keyof typeof sent], k);
  assert.deepEqual(
    s.environment,
    { variables: { MODE: "x" }, secrets: { API_KEY: "" } },
    "secrets as OSCAR shows them",
  );
  assert.deepEqual(s.storage_providers.s3, sent.storage_providers.s3);
  assert.deepEqual(s.storage_providers.minio.default, {
    endpoint: t.engine.store.url,
    verify: false,
    access_key: "hidden",
    secret_key: "hidden",
    region: t.engine.store.region,
  });
  assert.equal(s.output[0].suffix[0], ".txt");
  assert.equal(s.provider, undefined, "the engine's additions are under scar");
  assert.equal(s.scar.provider, "oscar");
  // The answer sent back (as the dashboard's update does) changes nothing, and keeps the secret.
  const back = await call("PUT", "/system/services", { body: s });
  assert.equal(back.status, 204, await back.text());
  assert.equal(t.engine.registry.get("everything-oscar")!.spec.secrets.API_KEY, "s3cr3t");
  const again = await json("GET", "/system/services/everything-oscar");
  assert.deepEqual({ ...again, token: s.token }, s);
  // A list decodes as OSCAR 4's []Service (expose.api_port [8080] is OSCAR 4's: 3's has a number).
  const list = await json("GET", "/system/services");
  decodes(list, { slice: SERVICE_V4 });
  decodes(
    list.filter((x: Json) => x.name !== "everything-oscar"),
    { slice: SERVICE_V3 },
  );
});

test("oscar_python: config (with its trailing slash), the storage client's providers, run and job with the service token", async () => {
  // Storage(): GET /system/services/<name> then GET /system/config/ ; both keys must be there
  const svc = await json("GET", "/system/services/grey-v4");
  assert.ok(svc.storage_providers, "oscar_python reads storage_providers (KeyError without it)");
  const cfg = await json("GET", "/system/config/");
  decodes(cfg, CONFIG_FOR_USER);
  for (const k of ["endpoint", "access_key", "secret_key", "region"])
    assert.equal(typeof cfg.minio_provider[k], "string", `minio_provider.${k} (oscar-cli type-asserts it)`);
  assert.equal(typeof cfg.minio_provider.verify, "boolean");
  assert.ok(Array.isArray(cfg.config.oidc_groups), "the dashboard reads config.oidc_groups.length");
  // run_service: the token from GET, then /run with it and the base64 of the input
  const run = await call("POST", "/run/grey-v4", {
    body: Buffer.from("hello from python").toString("base64"),
    auth: `Bearer ${svc.token}`,
  });
  assert.equal(run.status, 200);
  assert.match(Buffer.from(await run.text(), "base64").toString(), /hello from python/);
  const job = await call("POST", "/job/grey-v4", {
    body: Buffer.from("async").toString("base64"),
    auth: `Bearer ${svc.token}`,
  });
  assert.equal(job.status, 201);
  // list_jobs / get_job_logs
  const jobs = await waitFor("the async job to finish", async () => {
    const l = await json("GET", "/system/logs/grey-v4");
    const done = Object.values(l.jobs as Record<string, { status: string }>).filter(
      (j) => j.status === "Succeeded",
    );
    return done.length >= 2 ? l : undefined;
  });
  decodes(jobs, JOBS_INFO);
});

test("upload events: OSCAR services get MinIO's event and JOB_UUID; aws functions keep S3's", async () => {
  const script =
    'echo "EVENT=$EVENT"\nif [ -n "$JOB_UUID" ]; then echo "JOB_UUID=$JOB_UUID"; else echo JOB_UUID=none; fi\n';
  for (const [name, extra] of [
    ["ev-oscar", {}],
    ["ev-aws", { scar: { provider: "aws" } }],
  ] as const) {
    const r = await call("POST", "/system/services", {
      body: {
        name,
        image: IMAGE,
        script,
        input: [{ storage_provider: "minio.default", path: `${name}/in` }],
        ...extra,
      },
    });
    assert.equal(r.status, 201, await r.text());
  }
  const s3 = new S3Client({
    endpoint: t.engine.store.url,
    region: t.engine.store.region,
    forcePathStyle: true,
    credentials: t.engine.credentials.s3,
  });
  try {
    for (const name of ["ev-oscar", "ev-aws"])
      await s3.send(new PutObjectCommand({ Bucket: name, Key: "in/my file.txt", Body: "x" }));
  } finally {
    s3.destroy();
  }
  const logOf = (name: string) =>
    waitFor(`the job of ${name}`, async () => {
      const l = await json("GET", `/system/logs/${name}`);
      const [id, j] = Object.entries(l.jobs as Record<string, { status: string }>)[0] ?? [];
      if (!id || j!.status !== "Succeeded") return undefined;
      const r = await call("GET", `/system/logs/${name}/${id}`);
      return { id, log: await r.text() };
    });
  const oscar = await logOf("ev-oscar");
  const event = JSON.parse(/EVENT=(.*)/.exec(oscar.log)![1]!);
  assert.equal(event.EventName, "s3:ObjectCreated:Put");
  assert.equal(event.Key, "ev-oscar/in/my file.txt");
  assert.equal(event.Records[0].eventSource, "minio:s3");
  assert.equal(event.Records[0].requestParameters.principalId, t.engine.credentials.s3.accessKeyId);
  assert.equal(event.Records[0].s3.object.key, "in/my+file.txt");
  assert.match(oscar.log, new RegExp(`JOB_UUID=${oscar.id}`));
  const aws = await logOf("ev-aws");
  const awsEvent = JSON.parse(/EVENT=(.*)/.exec(aws.log)![1]!);
  assert.equal(awsEvent.Records[0].eventSource, "aws:s3");
  assert.equal(awsEvent.EventName, undefined);
  assert.match(aws.log, /JOB_UUID=none/);
});

test("buckets in OSCAR's MinIOBucket shape: list, create (with a folder), visibility, objects, delete", async () => {
  const before = await json("GET", "/system/buckets");
  decodes(before, { slice: MINIO_BUCKET });
  const ofService = before.find((b: Json) => b.bucket_name === "greyv4");
  assert.equal(ofService.metadata.from_service, "grey-v4");
  assert.equal(
    (await call("POST", "/system/buckets", { body: { bucket_name: "mine/sub", visibility: "" } })).status,
    201,
  );
  const mine = (await json("GET", "/system/buckets")).find((b: Json) => b.bucket_name === "mine");
  assert.deepEqual(mine, {
    bucket_name: "mine",
    visibility: "private",
    allowed_users: [],
    owner: "cluster_admin",
    metadata: { owner_name: "oscar" },
  });
  assert.equal((await call("POST", "/system/buckets", { body: { bucket_name: "mine" } })).status, 409);
  assert.equal(
    (await call("PUT", "/system/buckets", { body: { bucket_name: "mine", visibility: "public" } })).status,
    204,
  );
  const detail = await json("GET", "/system/buckets/mine");
  decodes(detail, MINIO_BUCKET);
  assert.equal(detail.visibility, "public");
  assert.deepEqual(
    detail.objects.map((o: Json) => o.object_name),
    ["sub/"],
  );
  assert.equal(detail.returned_items, 1);
  const restricted = await call("POST", "/system/buckets", {
    body: { bucket_name: "r", visibility: "restricted" },
  });
  assert.equal(restricted.status, 400);
  assert.equal((await call("DELETE", "/system/buckets/greyv4")).status, 409, "a service's bucket stays");
  assert.equal(
    (await call("PUT", "/system/buckets", { body: { bucket_name: "greyv4", visibility: "public" } })).status,
    403,
  );
  assert.equal((await call("DELETE", "/system/buckets/mine")).status, 204);
  assert.equal((await call("DELETE", "/system/buckets/mine")).status, 404);
  assert.equal((await call("GET", "/system/buckets", { auth: null })).status, 401);
});

test("status, execution logs, metrics and deployment in OSCAR's shapes; volumes and quotas off as in OSCAR", async () => {
  const status = await json("GET", "/system/status");
  decodes(status, STATUS_INFO);
  assert.equal(status.cluster.nodes_count, 1);
  assert.ok(status.cluster.nodes[0].cpu.capacity_cores >= 1000, "millicores");
  assert.ok(status.oscar.pods.states.Succeeded >= 2);
  const logs = await json("GET", "/system/logs");
  assert.ok(
    logs.logs.some((l: Json) => l.path === "/run/grey-v4" && l.status === 200 && l.method === "POST"),
  );
  assert.ok(logs.logs.some((l: Json) => l.path === "/job/grey-v4" && l.status === 201));
  const m = await json("GET", "/system/metrics");
  assert.ok(m.totals.requests_count_sync >= 1);
  assert.ok(m.totals.requests_count_async >= 1);
  const b = await json("GET", "/system/metrics/breakdown?group_by=service");
  assert.ok(b.items.some((i: Json) => i.key === "grey-v4" && i.requests_count_sync >= 1));
  assert.equal((await call("GET", "/system/metrics/breakdown")).status, 400);
  const per = await json("GET", "/system/metrics/grey-v4");
  assert.ok(per.metrics.find((x: Json) => x.metric === "requests-sync-per-service").value >= 1);
  const cpu = await json("GET", "/system/metrics/grey-v4?metric=cpu-hours");
  assert.equal(cpu.metric, "cpu-hours");
  assert.ok(cpu.value > 0);
  assert.equal((await call("GET", "/system/metrics/grey-v4?metric=nope")).status, 400);
  const d = await json("GET", "/system/services/grey-v4/deployment");
  decodes(d, DEPLOYMENT_STATUS);
  assert.equal(d.state, "ready");
  assert.equal((await call("GET", "/system/services/nothere/deployment")).status, 404);
  const dl = await json("GET", "/system/services/grey-v4/deployment/logs?timestamps=false&tailLines=200");
  assert.deepEqual(dl.entries, []);
  assert.equal((await call("GET", "/system/volumes")).status, 404);
  assert.equal((await call("GET", "/system/quotas/user")).status, 404);
});
