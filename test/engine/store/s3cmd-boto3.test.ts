// The store driven by s3cmd and by Debian's boto3 (/usr/bin/python3).
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { awsEnv, CREDS, run, type TestStore, withStore } from "./helpers.js";

let t: TestStore;
let home: string;
before(async () => {
  t = await withStore();
  home = mkdtempSync(join(tmpdir(), "scar-s3cmd-"));
});
after(async () => {
  await t.stop();
  rmSync(home, { recursive: true, force: true });
});
const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");
const hasS3cmd = existsSync("/usr/bin/s3cmd");

test("s3cmd: mb, put, get, ls, multipart, sync, del, rb", {
  skip: !hasS3cmd && "s3cmd is not installed",
}, async () => {
  const host = `127.0.0.1:${t.store.port}`;
  const cfg = join(home, "s3cfg");
  writeFileSync(
    cfg,
    `[default]\naccess_key = ${CREDS.accessKeyId}\nsecret_key = ${CREDS.secretAccessKey}\nhost_base = ${host}\nhost_bucket = ${host}\nuse_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n`,
  );
  const s3cmd = async (...args: string[]) => {
    const r = await run("/usr/bin/s3cmd", ["-c", cfg, "--no-progress", ...args], { HOME: home });
    assert.equal(r.code, 0, `s3cmd ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  await s3cmd("mb", "s3://cmd-bucket");
  const work = join(home, "w");
  mkdirSync(join(work, "tree", "d"), { recursive: true });
  writeFileSync(join(work, "small.txt"), "small file\n");
  const big = randomBytes(12 * 1024 * 1024 + 5);
  writeFileSync(join(work, "big.bin"), big);
  writeFileSync(join(work, "tree", "one"), "1");
  writeFileSync(join(work, "tree", "d", "two words"), "2");
  await s3cmd("put", join(work, "small.txt"), "s3://cmd-bucket/small.txt");
  await s3cmd("put", "--multipart-chunk-size-mb=5", join(work, "big.bin"), "s3://cmd-bucket/big.bin");
  await s3cmd("get", "s3://cmd-bucket/big.bin", join(work, "big.down"));
  assert.equal(md5(readFileSync(join(work, "big.down"))), md5(big));
  await s3cmd("get", "s3://cmd-bucket/small.txt", join(work, "small.down"));
  assert.equal(readFileSync(join(work, "small.down"), "utf8"), "small file\n");
  await s3cmd("sync", `${join(work, "tree")}/`, "s3://cmd-bucket/tree/");
  const ls = await s3cmd("ls", "--recursive", "s3://cmd-bucket/");
  const keys = ls
    .trim()
    .split("\n")
    .map((l) => l.slice(l.indexOf("s3://")))
    .sort();
  assert.deepEqual(keys, [
    "s3://cmd-bucket/big.bin",
    "s3://cmd-bucket/small.txt",
    "s3://cmd-bucket/tree/d/two words",
    "s3://cmd-bucket/tree/one",
  ]);
  const info = await s3cmd("info", "s3://cmd-bucket/big.bin");
  assert.match(info, /MD5 sum:/);
  // The same with SigV2 signing.
  await s3cmd("--signature-v2", "put", join(work, "small.txt"), "s3://cmd-bucket/v2/small.txt");
  await s3cmd("--signature-v2", "get", "s3://cmd-bucket/v2/small.txt", join(work, "v2.down"));
  assert.equal(readFileSync(join(work, "v2.down"), "utf8"), "small file\n");
  await s3cmd("del", "--recursive", "--force", "s3://cmd-bucket/");
  await s3cmd("rb", "s3://cmd-bucket");
});

test("boto3: put, get, list, multipart, presigned URL, errors", {
  skip: !existsSync("/usr/bin/python3") && "no python3",
}, async () => {
  const script = `
import boto3, botocore, botocore.config, hashlib, json, sys, urllib.error, urllib.request
# boto3 1.26 presigns with SigV2 unless told otherwise; the store speaks SigV4 only.
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", config=botocore.config.Config(signature_version="s3v4"))
out = {}
s3.create_bucket(Bucket="boto-bucket")
s3.put_object(Bucket="boto-bucket", Key="k 1.txt", Body=b"boto body", Metadata={"m": "v"})
r = s3.get_object(Bucket="boto-bucket", Key="k 1.txt")
out["body"] = r["Body"].read().decode()
out["meta"] = r["Metadata"]
big = bytes(range(256)) * (24 * 1024 * 4)  # 24 MiB
from boto3.s3.transfer import TransferConfig
import io
s3.upload_fileobj(io.BytesIO(big), "boto-bucket", "big", Config=TransferConfig(multipart_threshold=8*1024*1024, multipart_chunksize=8*1024*1024))
h = s3.head_object(Bucket="boto-bucket", Key="big")
out["etag"] = h["ETag"]
buf = io.BytesIO()
s3.download_fileobj("boto-bucket", "big", buf)
out["same"] = hashlib.md5(buf.getvalue()).hexdigest() == hashlib.md5(big).hexdigest()
out["keys"] = [c["Key"] for c in s3.list_objects_v2(Bucket="boto-bucket")["Contents"]]
url = s3.generate_presigned_url("get_object", Params={"Bucket": "boto-bucket", "Key": "k 1.txt"}, ExpiresIn=300)
out["presigned"] = urllib.request.urlopen(url).read().decode()
# With its default settings boto3 1.26 presigns with SigV2.
plain = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
url2 = plain.generate_presigned_url("get_object", Params={"Bucket": "boto-bucket", "Key": "k 1.txt"}, ExpiresIn=300)
out["v2"] = "AWSAccessKeyId=" in url2
out["presigned2"] = urllib.request.urlopen(url2).read().decode()
try:
    urllib.request.urlopen(url2.replace("Signature=", "Signature=x"))
except urllib.error.HTTPError as e:
    out["tampered"] = e.code
try:
    s3.get_object(Bucket="boto-bucket", Key="missing")
except botocore.exceptions.ClientError as e:
    out["missing"] = [e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]]
try:
    s3.delete_bucket(Bucket="boto-bucket")
except botocore.exceptions.ClientError as e:
    out["notempty"] = e.response["Error"]["Code"]
s3.delete_objects(Bucket="boto-bucket", Delete={"Objects": [{"Key": "k 1.txt"}, {"Key": "big"}]})
s3.delete_bucket(Bucket="boto-bucket")
print(json.dumps(out))
`;
  const env = awsEnv(home, t.store);
  const r = await run("/usr/bin/python3", ["-c", script, t.store.url], env);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.body, "boto body");
  assert.deepEqual(out.meta, { m: "v" });
  assert.match(out.etag, /^"[0-9a-f]{32}-3"$/);
  assert.equal(out.same, true);
  assert.deepEqual(out.keys, ["big", "k 1.txt"]);
  assert.equal(out.presigned, "boto body");
  assert.equal(out.v2, true);
  assert.equal(out.presigned2, "boto body");
  assert.equal(out.tampered, 403);
  assert.deepEqual(out.missing, ["NoSuchKey", 404]);
  assert.equal(out.notempty, "BucketNotEmpty");
});
