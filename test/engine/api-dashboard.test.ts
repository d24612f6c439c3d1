/**
 * The API routes the dashboard needs, over a real engine and real HTTP: the UI's files with their
 * Content-Security-Policy, /system/fdl (the same problems at the same file:line:col as `scar
 * validate`, then a deploy), /system/objects (an upload that triggers the function, a download),
 * and /system/events (the job changes as server-sent events).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { UI_DIR } from "../../src/engine/api/ui.js";
import { type Json, useApiEngine, waitFor } from "./api-harness.js";

const IMAGE = "localhost/scar-test/busybox:dashboard";
const t = useApiEngine({ prefix: "scar-api-dashboard-", image: IMAGE });

const SCRIPT =
  '#!/bin/sh\necho "upper-casing $INPUT_FILE_PATH"\ntr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"\n';

function fdl(name: string, memory = 128): string {
  return `functions:
  aws:
  - lambda:
      name: ${name}
      memory: ${memory}
      init_script: upper.sh
      container:
        image: ${IMAGE}
      input:
      - storage_provider: s3
        path: ${name}/input
      output:
      - storage_provider: s3
        path: ${name}/output
`;
}

test("/ui/ serves the built dashboard with a strict Content-Security-Policy, without auth", {
  skip: existsSync(join(UI_DIR, "index.html")) ? false : "dist/ui is not built (npm run build)",
}, async () => {
  const moved = await t.call("GET", "/ui", { auth: null, headers: {} });
  assert.equal(moved.status, 200, "fetch follows the redirect of /ui to /ui/");
  const page = await t.call("GET", "/ui/", { auth: null });
  assert.equal(page.status, 200);
  const csp = page.headers.get("content-security-policy") ?? "";
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /connect-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  const html = await page.text();
  assert.match(html, /<script src="app\.js" defer><\/script>/);
  assert.doesNotMatch(html, /<script>|<script [^>]*>[^<]/, "no inline script");
  const js = await t.call("GET", "/ui/app.js", { auth: null });
  assert.equal(js.status, 200);
  assert.match(js.headers.get("content-type") ?? "", /^text\/javascript/);
  assert.doesNotMatch(
    await js.text(),
    /https?:\/\/(?!www\.w3\.org)[a-z]/i,
    "nothing fetched from another host",
  );
  assert.equal((await t.call("GET", "/ui/../routes.js", { auth: null })).status, 404);
  assert.equal((await t.call("GET", "/ui/nothing.js", { auth: null })).status, 404);
  assert.equal((await t.call("POST", "/ui/", { auth: null })).status, 405);
});

test("/system/fdl names the same problems at the same file:line:col as scar validate", async () => {
  const bad = fdl("ui-bad", 5).replace("      container:", "      containr: {}\n      container:");
  const dir = join(t.root, "validate");
  mkdirSync(join(dir, "config"), { recursive: true });
  writeFileSync(join(dir, "bad.yaml"), bad);
  writeFileSync(join(dir, "upper.sh"), SCRIPT);
  let cli = "";
  try {
    execFileSync(process.execPath, [join(process.cwd(), "bin/scar"), "validate", "-f", "bad.yaml"], {
      cwd: dir,
      env: { ...process.env, SCAR_CONFIG_FOLDER: join(dir, "config"), SCAR_TARGET: "local" },
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    assert.fail("scar validate accepted the bad FDL");
  } catch (err) {
    cli = String((err as { stderr?: string }).stderr ?? "");
  }
  const lines = cli.split("\n");
  const cliIssues = lines.filter((l) => /^bad\.yaml:\d+:\d+: /.test(l)).sort();
  const cliSummary = lines.find((l) => /^bad\.yaml: \d+ errors?/.test(l));
  assert.ok(cliIssues.length >= 2, cli);
  const r = await t.call("POST", "/system/fdl", {
    body: { name: "bad.yaml", text: bad, files: { "upper.sh": SCRIPT } },
  });
  assert.equal(r.status, 400);
  const body: Json = await r.json();
  assert.equal(body.error, cliSummary);
  assert.deepEqual(body.details.map((i: Json) => i.text).sort(), cliIssues);
  assert.equal((await t.call("GET", "/system/services/ui-bad")).status, 404);

  const missing = await t.call("POST", "/system/fdl", { body: { name: "f.yaml", text: fdl("ui-x") } });
  assert.equal(missing.status, 400, "the script it names was not sent");
  assert.match(JSON.stringify(await missing.json()), /f\.yaml:\d+:\d+: error: .*upper\.sh/);
  const evil = await t.call("POST", "/system/fdl", {
    body: { name: "f.yaml", text: fdl("ui-x"), files: { "../upper.sh": SCRIPT } },
  });
  assert.equal(evil.status, 400);
  assert.match((await evil.json()).error, /plain file name/);
});

test("an FDL deployed through /system/fdl runs on an upload through /system/objects, seen in /system/events", async () => {
  const name = "ui-upper";
  const checked = await t.call("POST", "/system/fdl", {
    body: { name: "upper.yaml", text: fdl(name), files: { "upper.sh": SCRIPT } },
  });
  assert.equal(checked.status, 200, await checked.clone().text());
  assert.equal((await checked.json()).functions[0].name, name);
  assert.equal(
    (await t.call("GET", `/system/services/${name}`)).status,
    404,
    "validate alone deploys nothing",
  );
  const deployed = await t.call("POST", "/system/fdl?deploy=true", {
    body: { name: "upper.yaml", text: fdl(name), files: { "upper.sh": SCRIPT } },
  });
  assert.equal(deployed.status, 200, await deployed.clone().text());
  assert.deepEqual((await deployed.json()).deployed, [name]);

  // the event stream, read as the dashboard reads it: fetch with the Authorization header
  const events = new AbortController();
  const stream = await fetch(`${t.api.url}/system/events`, {
    headers: { authorization: t.adminAuth },
    signal: events.signal,
  });
  assert.equal(stream.status, 200);
  assert.match(stream.headers.get("content-type") ?? "", /^text\/event-stream/);
  const seen: Json[] = [];
  const reading = (async () => {
    const reader = stream.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        for (let at = buffer.indexOf("\n\n"); at >= 0; at = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          const data = block.split("\n").find((l) => l.startsWith("data: "));
          if (block.startsWith("event: jobs") && data) seen.push(JSON.parse(data.slice(6)));
        }
      }
    } catch {
      // aborted at the end of the test
    }
  })();
  try {
    assert.equal(
      (await t.call("PUT", `/system/objects/${name}?key=input/a.txt`, { auth: null })).status,
      401,
    );
    const put = await t.call("PUT", `/system/objects/${name}?key=input/a.txt`, { body: "hello dashboard\n" });
    assert.equal(put.status, 201, await put.clone().text());
    assert.deepEqual(await put.json(), { bucket: name, key: "input/a.txt", size: 16 });
    const done: Json = await waitFor("the upload's job to succeed, told by the event stream", () =>
      seen.flatMap((e) => e.jobs).find((j: Json) => j.function === name && j.status === "succeeded"),
    );
    assert.equal(done.trigger.key, "input/a.txt");
    assert.ok(
      seen.some((e) => e.queued.includes(name)),
      "the enqueue was told",
    );
    // (its start may or may not have its own event: changes within 200 ms are sent once, as the latest)
    assert.equal(
      seen.flatMap((e) => e.jobs).some((j: Json) => "payload" in j),
      false,
      "no payloads",
    );
    const out = await t.call("GET", `/system/objects/${name}?key=output/a.txt`);
    assert.equal(out.status, 200);
    assert.equal(out.headers.get("content-type"), "application/octet-stream");
    assert.equal(out.headers.get("x-content-type-options"), "nosniff");
    assert.match(out.headers.get("content-disposition") ?? "", /^attachment; filename="a\.txt"/);
    assert.equal(await out.text(), "HELLO DASHBOARD\n");
    assert.equal((await t.call("GET", `/system/objects/${name}?key=output/none.txt`)).status, 404);
    assert.equal((await t.call("GET", `/system/objects/nobucket?key=a`)).status, 404);
    assert.equal((await t.call("GET", `/system/objects/${name}?key=`)).status, 400);
    assert.equal((await t.call("GET", `/system/objects/${name}?key=input/`)).status, 400);
  } finally {
    events.abort();
    await reading;
  }
});

test("a page's own calls (X-Requested-With) get no Basic challenge and JSON errors; other pages' as before", async () => {
  const headers = { origin: t.api.url, "x-requested-with": "scar-dashboard" };
  const page = await t.call("GET", "/system/services", { auth: "Basic bm86bm8=", headers });
  assert.equal(page.status, 401);
  assert.equal(page.headers.get("www-authenticate"), null, "no password dialog of the browser's own");
  assert.match((await page.json()).error, /authentication required/);
  const missing = await t.call("GET", "/system/services/nothing-here", { headers });
  assert.equal(missing.status, 404);
  assert.match((await missing.json()).error, /nothing-here/);
  // OSCAR's dashboard (an Origin, no X-Requested-With) still gets OSCAR's text and the challenge
  const oscar = await t.call("GET", "/system/services", {
    auth: "Basic bm86bm8=",
    headers: { origin: t.api.url },
  });
  assert.equal(oscar.status, 401);
  assert.equal(oscar.headers.get("www-authenticate"), 'Basic realm="scar"');
  assert.match(oscar.headers.get("content-type") ?? "", /^text\/plain/);
});
