/**
 * The push to ECR against a real registry on loopback: Debian's docker-registry with htpasswd basic
 * auth for the user `AWS`, behind a proxy that logs every request. ECR's own API (DescribeRepositories,
 * CreateRepository, GetAuthorizationToken) is answered by SDK client mocks that hand out that
 * registry's endpoint and password, as ECR hands out its registry's.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, beforeEach, test } from "node:test";
import {
  CreateRepositoryCommand,
  DescribeRepositoriesCommand,
  ECRClient,
  GetAuthorizationTokenCommand,
  RepositoryNotFoundException,
} from "@aws-sdk/client-ecr";
import { mockClient } from "aws-sdk-client-mock";
import { StaticCredentials } from "../../../src/engine/images/auth.js";
import { ImageStore } from "../../../src/engine/images/index.js";
import { PushLedger } from "../../../src/engine/images/push-ledger.js";
import { tarDirectory } from "../../../src/engine/images/tarwriter.js";
import { EcrError, pushToEcr } from "../../../src/lambda/image/ecr.js";
import { tempDir } from "../../engine/images/helpers.js";
import {
  busyboxLayer,
  type FaultProxy,
  type Registry,
  startProxy,
  startRegistry,
  type TestImage,
  uploadImage,
} from "../../engine/images/registry-harness.js";

const PASSWORD = "ecr-token-password";
const ACCOUNT = "123456789012";
const work = tempDir("scar-ecr-");
let src: Registry;
let ecrReg: Registry;
let proxy: FaultProxy;
let images: ImageStore;
let v1: TestImage;
let v2: TestImage;
const ecr = new ECRClient({ region: "us-east-1", credentials: { accessKeyId: "x", secretAccessKey: "y" } });
const ecrMock = mockClient(ecr);
/** repositories that "exist" in the mocked ECR */
const repos = new Set<string>();

/** A layer holding one script file (what changes between two deploys). */
async function scriptLayer(text: string): Promise<Buffer> {
  const d = tempDir("scar-ecr-layer-");
  fs.mkdirSync(join(d, "var/task"), { recursive: true });
  fs.writeFileSync(join(d, "var/task/script.sh"), text, { mode: 0o755 });
  const parts: Buffer[] = [];
  for await (const c of tarDirectory(d)) parts.push(c);
  fs.rmSync(d, { recursive: true, force: true });
  return Buffer.concat(parts);
}

function answerEcr(password = PASSWORD) {
  ecrMock.reset();
  ecrMock.on(DescribeRepositoriesCommand).callsFake((input: { repositoryNames?: string[] }) => {
    const name = input.repositoryNames?.[0] ?? "";
    if (!repos.has(name))
      throw new RepositoryNotFoundException({
        message: `The repository '${name}' does not exist`,
        $metadata: {},
      });
    return {
      repositories: [{ repositoryName: name, repositoryUri: `${proxy.host}/${name}`, registryId: ACCOUNT }],
    };
  });
  ecrMock.on(CreateRepositoryCommand).callsFake((input: { repositoryName?: string }) => {
    repos.add(input.repositoryName!);
    return {
      repository: {
        repositoryName: input.repositoryName,
        repositoryUri: `${proxy.host}/${input.repositoryName}`,
        registryId: ACCOUNT,
      },
    };
  });
  ecrMock.on(GetAuthorizationTokenCommand).resolves({
    authorizationData: [
      {
        authorizationToken: Buffer.from(`AWS:${password}`).toString("base64"),
        proxyEndpoint: `http://${proxy.host}`,
      },
    ],
  });
}

before(async () => {
  [src, ecrReg] = await Promise.all([
    startRegistry(),
    startRegistry({ auth: "basic", user: "AWS", password: PASSWORD }),
  ]);
  proxy = await startProxy(ecrReg.host);
  const base = await busyboxLayer();
  // two builds of one function: the same base layer, the script layer changed
  v1 = await uploadImage(src.host, "lab/fn", "1", [base, await scriptLayer("echo one\n")]);
  v2 = await uploadImage(src.host, "lab/fn", "2", [base, await scriptLayer("echo two, changed\n")]);
  images = new ImageStore({ dataDir: join(work, "store") });
  await images.pull(`${src.host}/lab/fn:1`);
  await images.pull(`${src.host}/lab/fn:2`);
});
beforeEach(() => {
  answerEcr();
  proxy.log.length = 0;
});
after(async () => {
  ecrMock.restore();
  await proxy?.close();
  await Promise.all([src?.stop(), ecrReg?.stop()]);
  fs.rmSync(work, { recursive: true, force: true });
});

const blobPuts = () => proxy.log.filter((l) => l.startsWith("PUT") && l.includes("/blobs/uploads/"));
const configSize = (img: TestImage) => images.store.blobSize(img.configDigest)!;

async function pullBack(repo: string) {
  const store = new ImageStore({
    dataDir: tempDir("scar-ecr-back-"),
    credentials: new StaticCredentials({ [ecrReg.host]: { username: "AWS", password: PASSWORD } }),
  });
  return store.pull(`${ecrReg.host}/${repo}:latest`);
}

test("first push creates the repository, uploads every blob, and pulls back with the same digest", async () => {
  const said: string[] = [];
  const out = await pushToEcr({
    images,
    ecr,
    ref: `${src.host}/lab/fn:1`,
    repository: "fn-one",
    say: (l) => said.push(l),
  });
  assert.deepEqual(said, ["Creating ECR repository: fn-one", "Pushing new image to ECR ..."]);
  assert.deepEqual(ecrMock.commandCalls(CreateRepositoryCommand)[0]!.args[0].input, {
    repositoryName: "fn-one",
  });
  assert.equal(out.digest, v1.manifestDigest);
  assert.equal(out.imageUri, `${proxy.host}/fn-one@${v1.manifestDigest}`);
  const all = v1.layers.reduce((a, l) => a + l.length, 0) + configSize(v1);
  assert.equal(out.bytesUploaded, all);
  assert.equal(out.blobsSkipped, 0);
  assert.equal(out.blobsMounted, 0);
  assert.equal(blobPuts().length, 3, "two layers and the config");
  // ECR drops the chunks after the first of a chunked upload (aws/containers-roadmap#2831)
  assert.equal(proxy.log.filter((l) => l.startsWith("PATCH")).length, 0, "one PUT per blob");
  assert.ok(
    proxy.log.some((l) => l.startsWith("PUT /v2/fn-one/manifests/latest")),
    "tagged latest",
  );
  const back = await pullBack("fn-one");
  assert.equal(back.digest, v1.manifestDigest);
});

test("second push after a script change uploads only the new layer and the config", async () => {
  await pushToEcr({ images, ecr, ref: `${src.host}/lab/fn:1`, repository: "fn-one" });
  proxy.log.length = 0;
  const out = await pushToEcr({ images, ecr, ref: `${src.host}/lab/fn:2`, repository: "fn-one" });
  assert.equal(ecrMock.commandCalls(CreateRepositoryCommand).length, 0, "the repository exists");
  assert.equal(out.bytesUploaded, v2.layers[1]!.length + configSize(v2));
  assert.ok(out.bytesUploaded < v2.layers[0]!.length / 10, "far less than the base layer");
  assert.equal(out.blobsSkipped, 1);
  const puts = blobPuts();
  assert.equal(puts.length, 2);
  const base = images.find(`${src.host}/lab/fn:2`)!.layers[0]!.digest;
  assert.ok(
    !puts.some((l) => l.includes(encodeURIComponent(base)) || l.includes(base)),
    "base layer not sent",
  );
  assert.ok(proxy.log.includes(`HEAD /v2/fn-one/blobs/${base}`), "the base layer was checked");
  const back = await pullBack("fn-one");
  assert.equal(back.digest, v2.manifestDigest);
});

test("a push into a second repository of the registry mounts what scar pushed before", async () => {
  await pushToEcr({ images, ecr, ref: `${src.host}/lab/fn:2`, repository: "fn-one" });
  proxy.log.length = 0;
  const out = await pushToEcr({ images, ecr, ref: `${src.host}/lab/fn:2`, repository: "team/fn-two" });
  assert.equal(out.bytesUploaded, 0);
  assert.equal(out.blobsMounted, 3);
  assert.equal(blobPuts().length, 0, "no blob uploaded");
  assert.equal(proxy.log.filter((l) => l.startsWith("POST") && l.includes("mount=")).length, 3);
  const back = await pullBack("team/fn-two");
  assert.equal(back.digest, v2.manifestDigest);
});

test("a stale mount hint (a repository without the blob) falls back to an upload", async () => {
  const rec = images.find(`${src.host}/lab/fn:1`)!;
  const digests = [...rec.layers.map((l) => l.digest), rec.configDigest];
  fs.rmSync(join(images.store.root, "pushed.json"), { force: true }); // only this hint, not earlier tests' hints
  new PushLedger(images.store.root).record(proxy.host, "deleted/repo", digests);
  const out = await pushToEcr({ images, ecr, ref: `${src.host}/lab/fn:1`, repository: "fn-stale" });
  assert.equal(out.blobsMounted, 0);
  assert.equal(out.bytesUploaded, v1.layers.reduce((a, l) => a + l.length, 0) + configSize(v1));
  assert.ok(
    proxy.log.some((l) => l.includes("from=deleted%2Frepo")),
    "the mount was tried",
  );
  const back = await pullBack("fn-stale");
  assert.equal(back.digest, v1.manifestDigest);
});

test("no permission: ECR's AccessDeniedException and the registry's 401 and 403 are one clear line each", async () => {
  ecrMock.reset();
  ecrMock.on(DescribeRepositoriesCommand).rejects(
    Object.assign(
      new Error(
        "User: arn:aws:iam::123456789012:user/bob is not authorized to perform: ecr:DescribeRepositories",
      ),
      {
        name: "AccessDeniedException",
      },
    ),
  );
  await assert.rejects(
    pushToEcr({ images, ecr, ref: `${src.host}/lab/fn:1`, repository: "fn-denied" }),
    (e: Error) =>
      e instanceof EcrError &&
      /^no permission to read the ECR repository 'fn-denied': User: .* ecr:DescribeRepositories$/.test(
        e.message,
      ),
  );
  answerEcr("not-the-password");
  await assert.rejects(
    pushToEcr({ images, ecr, ref: `${src.host}/lab/fn:1`, repository: "fn-locked" }),
    (e: Error) =>
      e instanceof EcrError &&
      e.message === `no permission to push to the ECR repository 'fn-locked' (${proxy.host} answered 401)`,
  );

  // ECR's answer to an expired or foreign token: 403 DENIED (a stand-in server gives it to everything)
  const denying = http.createServer((_req, res) => {
    res.writeHead(403, { "content-type": "application/json" });
    res.end('{"errors":[{"code":"DENIED","message":"Your authorization token has expired."}]}');
  });
  await new Promise<void>((r) => denying.listen(0, "127.0.0.1", r));
  const host = `127.0.0.1:${(denying.address() as AddressInfo).port}`;
  try {
    ecrMock.on(GetAuthorizationTokenCommand).resolves({
      authorizationData: [
        {
          authorizationToken: Buffer.from(`AWS:${PASSWORD}`).toString("base64"),
          proxyEndpoint: `http://${host}`,
        },
      ],
    });
    await assert.rejects(
      pushToEcr({ images, ecr, ref: `${src.host}/lab/fn:1`, repository: "fn-expired" }),
      (e: Error) =>
        e instanceof EcrError &&
        e.message === `no permission to push to the ECR repository 'fn-expired' (${host} answered 403)`,
    );
  } finally {
    denying.closeAllConnections();
    await new Promise((r) => denying.close(r));
  }
});

test("a function name ECR refuses is an error before any call to AWS", async () => {
  for (const name of ["My-Function", "fn__x", "a", "-fn", "fn-"]) {
    await assert.rejects(
      pushToEcr({ images, ecr, ref: `${src.host}/lab/fn:1`, repository: name }),
      (e: Error) => e instanceof EcrError && e.message.includes(`'${name}' cannot name its ECR repository`),
    );
  }
  assert.equal(ecrMock.calls().length, 0);
  assert.equal(proxy.log.length, 0);
});
