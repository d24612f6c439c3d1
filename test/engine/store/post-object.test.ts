/**
 * POST Object (browser form uploads): forms made by boto3's generate_presigned_post (Debian's
 * python3), sent by curl -F; the policy's conditions and expiry enforced; anonymous forms only into a
 * public-read-write bucket; the upload is an s3:ObjectCreated:Post event; and a real HTML form
 * submitted by Chromium, redirected to success_action_redirect.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  GetObjectCommand,
  GetObjectTaggingCommand,
  PutBucketAclCommand,
  PutBucketNotificationConfigurationCommand,
} from "@aws-sdk/client-s3";
import { createPresignedPost } from "@aws-sdk/s3-presigned-post";
import { chromium } from "playwright-core";
import type { StoreEvent } from "../../../src/engine/store/index.js";
import { awsEnv, run, withStore } from "./helpers.js";

const CHROMIUM = "/usr/bin/chromium";
// biome-ignore lint/suspicious/noTemplateCurlyInString: S3's literal placeholder in a form's key
const FILENAME = "${filename}";

interface PostForm {
  url: string;
  fields: Record<string, string>;
}

/** boto3's presigned POST for `key` with these conditions (SigV4), as a web app's back end makes it. */
async function presignedPost(
  home: string,
  store: Parameters<typeof awsEnv>[1],
  bucket: string,
  key: string,
  fields: Record<string, string>,
  conditions: unknown[],
  expiresIn = 300,
): Promise<PostForm> {
  const script = `
import boto3, botocore.config, json, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", config=botocore.config.Config(signature_version="s3v4", s3={"addressing_style": "path"}))
a = json.loads(sys.argv[2])
print(json.dumps(s3.generate_presigned_post(a["bucket"], a["key"], Fields=a["fields"], Conditions=a["conditions"], ExpiresIn=a["expires"])))
`;
  const r = await run(
    "/usr/bin/python3",
    ["-c", script, store.url, JSON.stringify({ bucket, key, fields, conditions, expires: expiresIn })],
    awsEnv(home, store),
  );
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** curl -F: the form's fields in order, then the file (S3 reads fields before the file only). */
async function curlPost(url: string, fields: Record<string, string>, file: string) {
  const args = ["-sS", "-o", "-", "-w", "\n%{http_code}"];
  for (const [k, v] of Object.entries(fields)) args.push("--form-string", `${k}=${v}`);
  args.push("-F", `file=@${file};filename=photo.txt`, url);
  const r = await run("curl", args);
  assert.equal(r.code, 0, r.stderr);
  const i = r.stdout.lastIndexOf("\n");
  // The XML's text, entities decoded, so that messages read as S3 writes them.
  const body = r.stdout
    .slice(0, i)
    .replaceAll("&quot;", '"')
    .replaceAll("&apos;", "'")
    .replaceAll("&amp;", "&");
  return { status: Number(r.stdout.slice(i + 1)), body };
}

test("a boto3 presigned POST sent by curl: stored, conditions and expiry enforced", {
  skip: !existsSync("/usr/bin/python3") && "no python3",
}, async () => {
  const t = await withStore();
  const home = mkdtempSync(join(tmpdir(), "scar-post-"));
  const events: StoreEvent[] = [];
  const unsubscribe = t.store.subscribe((e) => {
    events.push(e);
  });
  try {
    await t.store.backend.createBucket("forms");
    await t.s3.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: "forms",
        NotificationConfiguration: {
          QueueConfigurations: [
            { QueueArn: "arn:aws:sqs:us-east-1:000000000000:q", Events: ["s3:ObjectCreated:*"] },
          ],
        },
      }),
    );
    const file = join(home, "photo.txt");
    writeFileSync(file, "from a form\n");
    const conditions = [
      ["starts-with", "$key", "uploads/"],
      ["content-length-range", 1, 100],
      { "Content-Type": "text/plain" },
      { "x-amz-meta-owner": "alice" },
    ];
    const fields = { "Content-Type": "text/plain", "x-amz-meta-owner": "alice" };
    const form = await presignedPost(home, t.store, "forms", `uploads/${FILENAME}`, fields, conditions);
    assert.equal(form.url, `${t.store.url}/forms`);

    const ok = await curlPost(form.url, form.fields, file);
    assert.equal(ok.status, 204, ok.body);
    const got = await t.s3.send(new GetObjectCommand({ Bucket: "forms", Key: "uploads/photo.txt" }));
    assert.equal(await got.Body!.transformToString(), "from a form\n");
    assert.equal(got.ContentType, "text/plain");
    assert.deepEqual(got.Metadata, { owner: "alice" });
    assert.equal(got.ETag, `"${createHash("md5").update("from a form\n").digest("hex")}"`);
    for (let i = 0; i < 50 && events.length === 0; i++) await sleep(20);
    assert.equal(events[0]?.record.eventName, "s3:ObjectCreated:Post");
    assert.equal(events[0]?.key, "uploads/photo.txt");

    // 201: S3's PostResponse document.
    const created = await curlPost(form.url, { ...form.fields, success_action_status: "201" }, file);
    assert.equal(created.status, 403, "success_action_status is a field the policy does not name");
    assert.match(created.body, /Extra input fields: success_action_status/);
    const with201 = await presignedPost(
      home,
      t.store,
      "forms",
      `uploads/${FILENAME}`,
      { ...fields, success_action_status: "201" },
      [...conditions, { success_action_status: "201" }],
    );
    const c201 = await curlPost(with201.url, with201.fields, file);
    assert.equal(c201.status, 201, c201.body);
    assert.match(
      c201.body,
      /<PostResponse><Location>.*\/forms\/uploads\/photo\.txt<\/Location><Bucket>forms<\/Bucket><Key>uploads\/photo\.txt<\/Key><ETag>"[0-9a-f]{32}"<\/ETag><\/PostResponse>/,
    );

    // Conditions: a key outside the prefix, another content type, a file too large, a bad signature.
    const refused: [Record<string, string>, string, number, RegExp][] = [
      [
        { ...form.fields, key: "elsewhere/x" },
        file,
        403,
        /Policy Condition failed: \["starts-with", "\$key", "uploads\/"\]/,
      ],
      [
        { ...form.fields, "Content-Type": "image/png" },
        file,
        403,
        /Policy Condition failed: \["eq", "\$Content-Type", "text\/plain"\]/,
      ],
      [{ ...form.fields, "x-amz-signature": "0".repeat(64) }, file, 403, /SignatureDoesNotMatch/],
    ];
    const big = join(home, "big.txt");
    writeFileSync(big, "x".repeat(101));
    refused.push([form.fields, big, 400, /EntityTooLarge/]);
    for (const [f, path, status, why] of refused) {
      const r = await curlPost(form.url, f, path);
      assert.equal(r.status, status, r.body);
      assert.match(r.body, why);
    }
    assert.deepEqual([...t.store.backend.buckets.get("forms")!.sorted], ["uploads/photo.txt"]);

    // An expired policy.
    const short = await presignedPost(home, t.store, "forms", "uploads/late.txt", fields, conditions, 1);
    await sleep(2100);
    const late = await curlPost(short.url, short.fields, file);
    assert.equal(late.status, 403);
    assert.match(late.body, /Policy expired/);

    // Tagging from the form's XML field.
    const tagging = "<Tagging><TagSet><Tag><Key>stage</Key><Value>raw</Value></Tag></TagSet></Tagging>";
    const tagged = await presignedPost(home, t.store, "forms", "uploads/tagged.txt", { tagging }, [
      { tagging },
    ]);
    assert.equal((await curlPost(tagged.url, tagged.fields, file)).status, 204);
    const tags = await t.s3.send(new GetObjectTaggingCommand({ Bucket: "forms", Key: "uploads/tagged.txt" }));
    assert.deepEqual(tags.TagSet, [{ Key: "stage", Value: "raw" }]);
  } finally {
    unsubscribe();
    await t.stop();
    rmSync(home, { recursive: true, force: true });
  }
});

test("the JS SDK's createPresignedPost, sent with fetch and FormData", async () => {
  const t = await withStore();
  try {
    await t.store.backend.createBucket("sdk-forms");
    const { url, fields } = await createPresignedPost(t.s3, {
      Bucket: "sdk-forms",
      Key: `in/${FILENAME}`,
      Conditions: [
        ["content-length-range", 1, 1000],
        ["starts-with", "$Content-Type", "image/"],
      ],
      Fields: { "Content-Type": "image/png" },
      Expires: 60,
    });
    const send = (body: string, type = "image/png") => {
      const form = new FormData();
      for (const [k, v] of Object.entries({ ...fields, "Content-Type": type })) form.append(k, v);
      form.append("file", new Blob([body]), "pic.png");
      return fetch(url, { method: "POST", body: form });
    };
    const ok = await send("not really a png");
    assert.equal(ok.status, 204, await ok.clone().text());
    assert.match(ok.headers.get("location") ?? "", /\/sdk-forms\/in\/pic\.png$/);
    const got = await t.s3.send(new GetObjectCommand({ Bucket: "sdk-forms", Key: "in/pic.png" }));
    assert.equal(got.ContentType, "image/png");
    assert.equal(await got.Body!.transformToString(), "not really a png");
    const wrongType = await send("x", "text/html");
    assert.equal(wrongType.status, 403);
    assert.match(await wrongType.text(), /starts-with/);
    const empty = await send("");
    assert.equal(empty.status, 400);
    assert.match(await empty.text(), /EntityTooSmall/);
  } finally {
    await t.stop();
  }
});

test("a form without a policy uploads only into a public-read-write bucket", async () => {
  const t = await withStore();
  const home = mkdtempSync(join(tmpdir(), "scar-post-anon-"));
  try {
    await t.store.backend.createBucket("open");
    const file = join(home, "f.txt");
    writeFileSync(file, "anon");
    const denied = await curlPost(`${t.store.url}/open`, { key: "a.txt" }, file);
    assert.equal(denied.status, 403);
    assert.match(denied.body, /must contain a policy/);
    await t.s3.send(new PutBucketAclCommand({ Bucket: "open", ACL: "public-read-write" }));
    const ok = await curlPost(`${t.store.url}/open`, { key: "a.txt" }, file);
    assert.equal(ok.status, 204, ok.body);
    const noKey = await curlPost(`${t.store.url}/open`, {}, file);
    assert.equal(noKey.status, 400);
    assert.match(noKey.body, /must contain a field named 'key'/);
    const missing = await curlPost(`${t.store.url}/nope`, { key: "a.txt" }, file);
    assert.match(missing.body, /NoSuchBucket/);
  } finally {
    await t.stop();
    rmSync(home, { recursive: true, force: true });
  }
});

test("an HTML form in Chromium uploads and is redirected to success_action_redirect", {
  skip:
    (!existsSync(CHROMIUM) && `${CHROMIUM} is not installed`) ||
    (!existsSync("/usr/bin/python3") && "no python3"),
}, async () => {
  const t = await withStore();
  const home = mkdtempSync(join(tmpdir(), "scar-post-browser-"));
  const done = createServer((req, res) => {
    res
      .writeHead(200, { "content-type": "text/html" })
      .end(`<!doctype html><title>done</title><p id=q>${req.url}</p>`);
  });
  await new Promise<void>((r) => done.listen(0, "127.0.0.1", r));
  const back = `http://127.0.0.1:${(done.address() as AddressInfo).port}/done`;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  try {
    await t.store.backend.createBucket("web");
    const form = await presignedPost(
      home,
      t.store,
      "web",
      `photos/${FILENAME}`,
      { success_action_redirect: back },
      [["starts-with", "$key", "photos/"], { success_action_redirect: back }],
    );
    const inputs = Object.entries(form.fields)
      .map(([k, v]) => `<input type=hidden name="${k}" value="${v.replaceAll('"', "&quot;")}">`)
      .join("");
    const page = await browser.newPage();
    await page.goto(back);
    await page.setContent(
      `<form method=post enctype="multipart/form-data" action="${form.url}">${inputs}<input type=file name=file><button>Upload</button></form>`,
    );
    const file = join(home, "cat.txt");
    writeFileSync(file, "a cat, in text");
    await page.setInputFiles("input[type=file]", file);
    await Promise.all([page.waitForURL(/\/done\?/), page.click("button")]);
    const q = new URL(page.url()).searchParams;
    assert.equal(q.get("bucket"), "web");
    assert.equal(q.get("key"), "photos/cat.txt");
    assert.match(q.get("etag") ?? "", /^"[0-9a-f]{32}"$/);
    const got = await t.s3.send(new GetObjectCommand({ Bucket: "web", Key: "photos/cat.txt" }));
    assert.equal(await got.Body!.transformToString(), "a cat, in text");
  } finally {
    await browser.close();
    done.close();
    await t.stop();
    rmSync(home, { recursive: true, force: true });
  }
});
