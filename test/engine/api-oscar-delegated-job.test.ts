/**
 * OSCAR >= 4.1's X-Delegated-Job-ID on /job/<service>: an OSCAR that delegates a job here names it
 * (and finds it again in /system/logs/<service>/<id>); the name is what OSCAR's Kubernetes takes for
 * a Job (400 otherwise, 409 when taken). The script sees it as JOB_UUID, as OSCAR's supervisor does.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Json, useApiEngine, waitFor } from "./api-harness.js";
import { oscarCliService } from "./go-json.js";

const IMAGE = "localhost/scar-test/busybox:delegated";
const t = useApiEngine({ prefix: "scar-oscar-delegated-", image: IMAGE });

async function service(): Promise<Json> {
  const got = await t.call("GET", "/system/services/deleg");
  if (got.status === 200) return got.json();
  const created = await t.call("POST", "/system/services", {
    body: oscarCliService({
      name: "deleg",
      image: IMAGE,
      script: 'echo "job is $JOB_UUID"\n',
      clusterId: "scar-local",
      endpoint: t.api.url,
    }),
  });
  assert.equal(created.status, 201, await created.clone().text());
  return (await t.call("GET", "/system/services/deleg")).json();
}

const job = (token: string, id?: string) =>
  t.call("POST", "/job/deleg", {
    body: Buffer.from("{}").toString("base64"),
    auth: `Bearer ${token}`,
    headers: id === undefined ? {} : { "X-Delegated-Job-ID": id, "X-Delegated-From": "oscar-a" },
  });

test("the delegating OSCAR's job name is the job's: listed, its log found by it, JOB_UUID in the script", async () => {
  const { token } = await service();
  const r = await job(token, "deleg-7f3a9c.part-2");
  assert.equal(r.status, 201, await r.clone().text());
  assert.equal((await r.json()).jobID, "deleg-7f3a9c.part-2");
  await waitFor("the delegated job to finish", async () => {
    const l = await (await t.call("GET", "/system/logs/deleg")).json();
    return l.jobs["deleg-7f3a9c.part-2"]?.status === "Succeeded" ? true : undefined;
  });
  const log = await t.call("GET", "/system/logs/deleg/deleg-7f3a9c.part-2");
  assert.equal(log.status, 200);
  assert.match(await log.text(), /^job is deleg-7f3a9c\.part-2$/m);
  // the same name again: taken
  const again = await job(token, "deleg-7f3a9c.part-2");
  assert.equal(again.status, 409);
  assert.match((await again.json()).error, /"deleg-7f3a9c\.part-2" already exists/);
});

test("a name Kubernetes would refuse is 400 and runs nothing; an empty header names nothing", async () => {
  const { token } = await service();
  const before = Object.keys((await (await t.call("GET", "/system/logs/deleg")).json()).jobs).length;
  for (const bad of [
    "Upper-Case",
    "under_score",
    "-dash-first",
    "dash-last-",
    "two..dots",
    "x".repeat(64),
    "a/b",
  ]) {
    const r = await job(token, bad);
    assert.equal(r.status, 400, bad);
    assert.match((await r.json()).error, /X-Delegated-Job-ID .* is not a job name/, bad);
  }
  assert.equal(
    Object.keys((await (await t.call("GET", "/system/logs/deleg")).json()).jobs).length,
    before,
    "no job was made",
  );
  const plain = await job(token, "");
  assert.equal(plain.status, 201);
  assert.match((await plain.json()).jobID, /^[0-9a-f]{8}-[0-9a-f]{4}-/);
  assert.equal((await job(token, "x".repeat(63))).status, 201, "63 characters is the longest");
});
