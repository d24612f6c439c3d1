/**
 * The dashboard in a real browser: headless Chromium (Debian's, driven by playwright-core) against a
 * real engine on loopback. Signs in with the keyboard, shows an FDL's problems as scar validate
 * does, deploys a function from its FDL and script, uploads three files by the file input, watches
 * their jobs reach succeeded without a reload (and a fourth, uploaded meanwhile, arrive), opens a
 * job's timeline and log, follows a running job's log live (a job held at a gate between two lines:
 * the second comes without a reload or a second request), previews an output beside its input and
 * downloads it, lets a job die, fixes the script and redrives it (by the keyboard), uploads an image
 * archive with its progress, audits every page with axe-core and walks them by the keyboard
 * (ui-audit.ts), and deletes the function. Checks that every control has a name,
 * that the page breaks no CSP rule, and takes a screenshot of each page (into
 * $SCAR_UI_SCREENSHOTS when set, else a temp folder that is removed). Skipped when /usr/bin/chromium
 * is missing (scripts/install-deps.sh installs it).
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { chromium, type Page } from "playwright-core";
import { UI_DIR } from "../../src/engine/api/ui.js";
import { useApiEngine } from "./api-harness.js";
import { craftTar } from "./images/helpers.js";
import { type JobGate, openGate } from "./job-gate.js";
import { activate, auditDashboard } from "./ui-audit.js";

const CHROMIUM = "/usr/bin/chromium";
const IMAGE = "localhost/scar-test/busybox:ui";
const t = useApiEngine({
  prefix: "scar-ui-browser-",
  image: IMAGE,
  engine: { backoff: { baseMs: 20, factor: 1, maxMs: 20 } },
});

const UPPER =
  '#!/bin/sh\necho "upper-casing $INPUT_FILE_PATH"\ntr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"\n';
const BROKEN = '#!/bin/sh\necho "this script is broken" >&2\nexit 3\n';

function fdl(name: string, extra = ""): string {
  return `functions:
  aws:
  - lambda:
      name: ${name}
      init_script: upper.sh${extra}
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

/** A `docker save` archive of one layer of `bytes` random bytes (an upload with progress to show). */
function dockerArchive(bytes: number): Buffer {
  const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
  const layer = craftTar([{ name: "data/blob", data: randomBytes(bytes) }]);
  const config = Buffer.from(
    JSON.stringify({
      architecture: process.arch === "arm64" ? "arm64" : "amd64",
      os: "linux",
      config: { Env: ["PATH=/bin"] },
      rootfs: { type: "layers", diff_ids: [`sha256:${sha(layer)}`] },
    }),
  );
  return craftTar([
    { name: `${sha(layer)}/layer.tar`, data: layer },
    { name: `${sha(config)}.json`, data: config },
    {
      name: "manifest.json",
      data: JSON.stringify([
        { Config: `${sha(config)}.json`, RepoTags: null, Layers: [`${sha(layer)}/layer.tar`] },
      ]),
    },
  ]);
}

/** Controls without an accessible name (a label, aria-label(ledby), their text, or a title). */
async function unnamedControls(page: Page): Promise<string[]> {
  // a string: this runs in the page, and the tests are compiled without the DOM's types
  return page.evaluate(`(() => {
    const out = [];
    for (const el of document.querySelectorAll("button, input, select, textarea, a[href]")) {
      const labelled =
        (el.labels && el.labels.length > 0) ||
        el.getAttribute("aria-label") ||
        el.getAttribute("aria-labelledby") ||
        el.getAttribute("title") ||
        (el.tagName !== "INPUT" && el.textContent.trim());
      if (!labelled) out.push(el.outerHTML.slice(0, 120));
    }
    return out;
  })()`);
}

test("the dashboard: sign in, deploy from an FDL, upload, live jobs, log, preview, redrive, delete", {
  skip: !existsSync(CHROMIUM)
    ? `${CHROMIUM} is not installed (scripts/install-deps.sh installs it)`
    : !existsSync(join(UI_DIR, "index.html"))
      ? "dist/ui is not built (npm run build)"
      : false,
}, async () => {
  const keep = process.env.SCAR_UI_SCREENSHOTS;
  const shots = keep ?? mkdtempSync(join(tmpdir(), "scar-ui-shots-"));
  mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  const violations: string[] = [];
  const pageErrors: string[] = [];
  let lastPage: Page | undefined;
  let gate: JobGate | undefined;
  try {
    const context = await browser.newContext({
      acceptDownloads: true,
      viewport: { width: 1280, height: 800 },
    });
    const page = await context.newPage();
    lastPage = page;
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("dialog", (d) => void d.accept());
    const shot = (name: string) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

    // 1. sign in, with the keyboard only
    await page.goto(`${t.api.url}/ui/`);
    await page.getByLabel("Password").waitFor();
    await shot("1-login");
    const a = t.engine.credentials.admin;
    await page.getByLabel("Password").fill("wrong");
    await page.keyboard.press("Enter");
    await page.getByRole("alert").filter({ hasText: "wrong user or password" }).waitFor();
    await page.getByLabel("User").focus();
    await page.keyboard.press("Control+A");
    await page.keyboard.type(a.user);
    await page.keyboard.press("Tab");
    await page.keyboard.press("Control+A");
    await page.keyboard.type(a.password);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Functions" }).waitFor();
    // a marker that a reload would lose: every later step happens in this one page load
    await page.evaluate("window.scarMarker = 42");

    // 2. an FDL with problems: the same lines as scar validate; then the demo-like function deployed
    const name = "ui-upper";
    await page.getByLabel("File name").fill("upper.yaml");
    await page
      .getByLabel("FDL (YAML)")
      .fill(fdl(name).replace("init_script: upper.sh", "init_script: upper.sh\n      memory: 5"));
    await page
      .getByLabel("Scripts it names")
      .setInputFiles({ name: "upper.sh", mimeType: "text/x-sh", buffer: Buffer.from(UPPER) });
    await page.getByRole("button", { name: "Validate" }).click();
    const issue = page
      .getByRole("list", { name: "problems in the FDL" })
      .getByText("upper.yaml:6:15: error: functions.aws[0].lambda.memory: memory 5 is out of range");
    await issue.waitFor();
    await page.getByLabel("FDL (YAML)").fill(fdl(name));
    await page.getByRole("button", { name: "Deploy" }).click();
    await page
      .getByRole("status")
      .filter({ hasText: `Deployed ${name}.` })
      .waitFor();
    await page.getByRole("row", { name: new RegExp(name) }).waitFor();
    assert.deepEqual(await unnamedControls(page), []);
    await shot("2-functions");

    // 3. three files by the file input of the function's input folder
    await page.getByRole("link", { name: "Buckets" }).click();
    await page.getByRole("link", { name }).click();
    await page.getByRole("button", { name: `input/ (${name}'s input)` }).waitFor();
    await page.locator(".drop input[type=file]").setInputFiles(
      ["one", "two", "three"].map((n) => ({
        name: `${n}.txt`,
        mimeType: "text/plain",
        buffer: Buffer.from(`file ${n}\n`),
      })),
    );
    await page.getByText(`Uploaded 3 files to ${name}/input/.`).waitFor();

    // 4. their jobs reach succeeded on the jobs page, live; a fourth upload appears and succeeds too
    await page.getByRole("link", { name: "Jobs" }).click();
    const rows = page.locator(".jobscroll li");
    const succeeded = page.locator('.jobscroll li[data-status="succeeded"]');
    await succeeded.nth(2).waitFor();
    const put = await t.call("PUT", `/system/objects/${name}?key=input/four.txt`, { body: "file four\n" });
    assert.equal(put.status, 201);
    await succeeded.nth(3).waitFor();
    assert.equal(await rows.count(), 4);
    assert.equal(await succeeded.count(), 4);
    assert.deepEqual(await unnamedControls(page), []);
    await shot("3-jobs");

    // 5. one job's timeline and log
    await page.getByRole("link", { name: `${name}/input/one.txt` }).click();
    await page.getByRole("heading", { name: "Stages" }).waitFor();
    await page.getByRole("rowheader", { name: "run" }).waitFor();
    await page.locator("pre.log").filter({ hasText: "upper-casing" }).waitFor();
    assert.match((await page.locator("pre.log").textContent()) ?? "", /START RequestId: [0-9a-f-]{36}/);
    await shot("4-job");

    // ... a running job's log, followed live: its second line comes without a reload or a poll
    gate = await openGate();
    const follow = {
      name: "ui-follow",
      image: IMAGE,
      memory: "128Mi",
      script: gate.script("first line", "second line"),
      scar: { network: "host" },
    };
    assert.equal((await t.call("POST", "/system/services", { body: follow })).status, 201);
    const followed = (await (await t.call("POST", "/job/ui-follow", { body: "{}" })).json()).jobID as string;
    const logReads: string[] = [];
    page.on("request", (r) => {
      if (r.url().includes(`/system/jobs/${followed}/log`)) logReads.push(new URL(r.url()).search);
    });
    await page.goto(`${t.api.url}/ui/#/jobs/${followed}`);
    const log = page.locator("pre.log");
    await log.filter({ hasText: "first line" }).waitFor();
    assert.doesNotMatch((await log.textContent()) ?? "", /second line/, "the job waits at the gate");
    await gate.release();
    await log.filter({ hasText: "second line" }).waitFor();
    await log.filter({ hasText: `END RequestId: ${followed}` }).waitFor();
    await page.locator(".facts .st.succeeded").waitFor();
    assert.deepEqual(logReads, ["?follow=true"], "one request, that follows");
    await shot("4b-job-followed");

    // ... an output previewed beside its input, and downloaded
    await page.goto(`${t.api.url}/ui/#/buckets/${name}`);
    await page.getByRole("button", { name: `output/ (${name}'s output)` }).click();
    await page.getByRole("button", { name: `Preview output/two.txt` }).click();
    await page
      .locator(".previews figure")
      .filter({ hasText: "output: output/two.txt" })
      .getByText("FILE TWO")
      .waitFor();
    await page
      .locator(".previews figure")
      .filter({ hasText: "input: input/two.txt" })
      .getByText("file two")
      .waitFor();
    await shot("5-bucket");
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Download output/two.txt" }).click(),
    ]);
    assert.equal(download.suggestedFilename(), "two.txt");
    assert.equal(readFileSync((await download.path())!, "utf8"), "FILE TWO\n");

    // 6. a job that fails until it is dead; the script fixed; the dead letter redriven
    const flaky = "ui-flaky";
    await page.getByRole("link", { name: "Functions" }).click();
    await page
      .getByLabel("Scripts it names")
      .setInputFiles({ name: "upper.sh", mimeType: "text/x-sh", buffer: Buffer.from(BROKEN) });
    await page.getByLabel("FDL (YAML)").fill(fdl(flaky, "\n      retries: 1"));
    await page.getByRole("button", { name: "Deploy" }).click();
    await page
      .getByRole("status")
      .filter({ hasText: `Deployed ${flaky}.` })
      .waitFor();
    assert.equal(
      (await t.call("PUT", `/system/objects/${flaky}?key=input/x.txt`, { body: "x\n" })).status,
      201,
    );
    await page.getByRole("link", { name: "Dead letters" }).click();
    await page.getByRole("button", { name: `Redrive all of ${flaky}` }).waitFor();
    await shot("6-dead-letters");
    // the script fixed (and the memory changed) in the function's edit form
    await page.getByRole("link", { name: "Functions" }).click();
    await page.getByRole("button", { name: `Edit ${flaky}` }).click();
    const edit = page.getByRole("region", { name: `Edit ${flaky}` });
    await edit.locator('textarea[name="script"]').fill(UPPER);
    await edit.getByLabel("Memory (MiB)").fill("256");
    await edit.getByRole("button", { name: "Save" }).click();
    await page
      .getByRole("status")
      .filter({ hasText: `Saved ${flaky}` })
      .waitFor();
    const edited = await (await t.call("GET", `/system/services/${flaky}`)).json();
    assert.equal(edited.script, UPPER);
    assert.equal(edited.memory, "256Mi");
    await shot("6b-edit");
    await page.getByRole("link", { name: "Dead letters" }).click();
    await activate(page, page.getByRole("button", { name: /^Redrive [0-9a-f-]{36}$/ }));
    await page.getByText("Redriven: 1.").waitFor();
    await page.getByText("No dead letters.").waitFor();
    await page.getByRole("link", { name: "Jobs" }).click();
    await page
      .locator('.jobscroll li[data-status="succeeded"]')
      .filter({ hasText: `${flaky}/input/x.txt` })
      .waitFor();
    const jobs = await (await t.call("GET", `/system/jobs?service=${flaky}`)).json();
    assert.equal(jobs.jobs.length, 1);
    assert.equal(jobs.jobs[0].status, "succeeded");
    assert.equal(jobs.jobs[0].attemptCount, 3, "two failed attempts, then the redriven one");

    // invoke: sync, the answer shown (the one output file, decoded); async, a job
    await page.getByRole("link", { name: "Functions" }).click();
    await page.getByRole("button", { name: `Invoke ${name}` }).click();
    await page.getByLabel(/^or a file as the payload/).setInputFiles({
      name: "greeting.txt",
      mimeType: "text/plain",
      buffer: Buffer.from("hello from the page\n"),
    });
    await page.getByRole("button", { name: "Invoke", exact: true }).click();
    await page.locator(".answer pre").filter({ hasText: "HELLO FROM THE PAGE" }).waitFor();
    await page.getByLabel(/^or a file as the payload/).setInputFiles([]);
    await page.getByRole("textbox", { name: "Payload" }).fill('{"greeting": "hi"}');
    await page.getByText("async (a job)").click();
    await page.getByRole("button", { name: "Invoke", exact: true }).click();
    const jobLink = page.locator(".answer a");
    await jobLink.waitFor();
    const asyncId = (await jobLink.textContent()) ?? "";
    assert.match(asyncId, /^[0-9a-f-]{36}$/);
    await shot("6c-invoke");

    // the engine: its images and the charts of the jobs above
    await page.getByRole("link", { name: "Engine" }).click();
    await page.getByRole("rowheader", { name: IMAGE }).waitFor();
    await page.getByRole("img", { name: "Queue depth" }).locator("canvas").waitFor();
    assert.equal(await page.locator(".chart canvas").count(), 4);
    assert.match(
      (await page.locator(".hint").filter({ hasText: "most recent jobs" }).textContent()) ?? "",
      /From the \d+ most recent jobs/,
    );
    assert.deepEqual(await unnamedControls(page), []);
    // ... an image archive uploaded with its progress, then listed
    await page.evaluate(`(() => {
      window.importSeen = [];
      const form = document.querySelector("main");
      new MutationObserver(() => {
        for (const s of form.querySelectorAll("[role=status]")) window.importSeen.push(s.textContent);
      }).observe(form, { subtree: true, childList: true, characterData: true });
    })()`);
    await page.getByLabel("Image archive (docker save or OCI)").setInputFiles({
      name: "tiny.tar",
      mimeType: "application/x-tar",
      buffer: dockerArchive(8 << 20),
    });
    await page.getByLabel("Tag (optional)").fill("scar-test/uploaded:ui");
    await page.getByRole("button", { name: "Import", exact: true }).click();
    await page.getByRole("status").filter({ hasText: "Imported scar-test/uploaded:ui" }).waitFor();
    await page.getByRole("rowheader", { name: "docker.io/scar-test/uploaded:ui" }).waitFor();
    const seen = (await page.evaluate("window.importSeen")) as string[];
    assert.ok(seen.includes("Uploaded 8.0 MiB; importing…"), `the upload's progress: ${seen.join(" | ")}`);
    assert.ok(t.engine.images.find("scar-test/uploaded:ui"));
    await shot("6d-engine");

    // accessibility: an axe-core audit of each page, and each page and an action of it by keyboard
    await auditDashboard(browser, { url: t.api.url, user: a.user, password: a.password, fn: name, shots });

    // 7. delete the function
    await page.getByRole("link", { name: "Functions" }).click();
    // ... a function made from the form instead of an FDL, which runs an upload too
    const form = page.locator("details.panel");
    await form.getByText("Create from a form").click();
    await form.getByLabel("Name").fill("ui-form");
    await form.getByLabel("Image").fill(IMAGE);
    await form.getByLabel("Input (bucket/folder)").fill("ui-form/in");
    await form.getByLabel("Output (bucket/folder)").fill("ui-form/out");
    await form.locator('textarea[name="script"]').fill(UPPER);
    await form.getByRole("button", { name: "Create" }).click();
    await form.getByRole("status").filter({ hasText: "Created ui-form." }).waitFor();
    await page.getByRole("row", { name: /^ui-form/ }).waitFor();
    assert.equal(
      (await t.call("PUT", "/system/objects/ui-form?key=in/f.txt", { body: "form\n" })).status,
      201,
    );
    await page
      .getByRole("row", { name: /^ui-form/ })
      .locator(".st.succeeded", { hasText: "1" })
      .waitFor();
    await shot("7a-form");

    await page.getByRole("button", { name: `Delete ${name}` }).click();
    await page.getByRole("row", { name: new RegExp(flaky) }).waitFor();
    await page.getByRole("row", { name: new RegExp(`^${name}`) }).waitFor({ state: "detached" });
    assert.equal((await t.call("GET", `/system/services/${name}`)).status, 404);
    await shot("7-functions-after");

    assert.equal(await page.evaluate("window.scarMarker"), 42, "no reload");
    assert.deepEqual(violations, []);
    assert.deepEqual(pageErrors, []);
  } catch (err) {
    // what the page showed when a step failed, beside the screenshots
    await lastPage?.screenshot({ path: join(shots, "failed.png"), fullPage: true }).catch(() => {});
    throw err;
  } finally {
    gate?.close();
    await browser.close();
    if (!keep) rmSync(shots, { recursive: true, force: true });
  }
});
