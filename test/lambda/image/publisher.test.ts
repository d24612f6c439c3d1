/**
 * The FunctionImagePublisher the AWS target calls: SCAR's prepared-ECR-image rule, the refusals made
 * before any call to AWS, and build-then-push into a real registry on loopback (docker-registry with
 * htpasswd basic auth; ECR's API answered by SDK mocks). The builder is given to the publisher; here it
 * imports a root file system into the store under the tag it is asked for.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { after, before, beforeEach, test } from "node:test";
import {
  CreateRepositoryCommand,
  DescribeImagesCommand,
  DescribeRepositoriesCommand,
  ECRClient,
  GetAuthorizationTokenCommand,
  ImageNotFoundException,
  RepositoryNotFoundException,
} from "@aws-sdk/client-ecr";
import { mockClient } from "aws-sdk-client-mock";
import { StaticCredentials } from "../../../src/engine/images/auth.js";
import { ImageStore } from "../../../src/engine/images/index.js";
import { parseFdl } from "../../../src/fdl/index.js";
import type { FunctionSpec } from "../../../src/fdl/spec.js";
import { EcrError } from "../../../src/lambda/image/ecr.js";
import { EcrFunctionImagePublisher, LAMBDA_IMAGE_LIMIT_BYTES } from "../../../src/lambda/image/publisher.js";
import type { BuildFunctionImageInput, BuiltFunctionImage } from "../../../src/lambda/image/types.js";
import { busyboxRootfs, tempDir } from "../../engine/images/helpers.js";
import { type Registry, startRegistry } from "../../engine/images/registry-harness.js";

const PASSWORD = "ecr-token-password";
const work = tempDir("scar-publish-");
let reg: Registry;
let images: ImageStore;
const ecr = new ECRClient({ region: "us-east-1", credentials: { accessKeyId: "x", secretAccessKey: "y" } });
const ecrMock = mockClient(ecr);
let regions: string[] = [];
let builds: BuildFunctionImageInput[] = [];
let oversize = false;
let rootfsCount = 0;

/** Stands in for buildFunctionImage: the function's script over busybox, imported under `tag`. */
async function build(input: BuildFunctionImageInput): Promise<BuiltFunctionImage> {
  builds.push(input);
  const root = join(work, `rootfs-${rootfsCount++}`);
  busyboxRootfs(root);
  fs.mkdirSync(join(root, "var/task"), { recursive: true });
  fs.writeFileSync(join(root, "var/task/script.sh"), `echo ${input.spec.name}\n`);
  await input.images.import(root, { tag: input.tag, changes: ["WORKDIR /var/task"] });
  const rec = input.images.find(input.tag)!;
  const compressed = rec.layers.reduce((a, l) => a + l.size, 0);
  return {
    reference: input.tag,
    digest: rec.digest,
    layerBytes: compressed,
    compressedBytes: compressed,
    uncompressedBytes: oversize ? LAMBDA_IMAGE_LIMIT_BYTES + 1 : compressed * 2,
  };
}

function spec(name: string, container: Record<string, unknown>): FunctionSpec {
  const yaml = `functions:\n  aws:\n  - lambda:\n      name: ${name}\n      runtime: image\n      container: ${JSON.stringify(container)}\n`;
  return parseFdl(join(work, "fn.yaml"), yaml).functions[0]!;
}

const publisher = () =>
  new EcrFunctionImagePublisher({
    images,
    build,
    tty: false,
    ecr: (region) => {
      regions.push(region);
      return ecr;
    },
  });

before(async () => {
  reg = await startRegistry({ auth: "basic", user: "AWS", password: PASSWORD });
  images = new ImageStore({ dataDir: join(work, "store") });
});
beforeEach(() => {
  regions = [];
  builds = [];
  oversize = false;
  ecrMock.reset();
  ecrMock
    .on(DescribeRepositoriesCommand)
    .rejects(new RepositoryNotFoundException({ message: "no such repository", $metadata: {} }));
  ecrMock.on(CreateRepositoryCommand).callsFake((i: { repositoryName?: string }) => ({
    repository: { repositoryUri: `${reg.host}/${i.repositoryName}`, registryId: "123456789012" },
  }));
  ecrMock.on(GetAuthorizationTokenCommand).resolves({
    authorizationData: [
      {
        authorizationToken: Buffer.from(`AWS:${PASSWORD}`).toString("base64"),
        proxyEndpoint: `http://${reg.host}`,
      },
    ],
  });
});
after(async () => {
  ecrMock.restore();
  await reg?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

test("builds the function image from its source, pushes it to the repository named after it", async () => {
  const lines: string[] = [];
  const out = await publisher().publish(
    spec("fn-pub", { image: "docker.io/library/busybox:1.36" }),
    {},
    { region: "eu-west-3", onProgress: (l) => lines.push(l) },
  );
  assert.equal(builds.length, 1);
  assert.deepEqual(builds[0]!.source, { kind: "registry", reference: "docker.io/library/busybox:1.36" });
  assert.equal(builds[0]!.tag, "scar-lambda/fn-pub:latest");
  assert.deepEqual(regions, ["eu-west-3"], "ECR in the function's region");
  assert.equal(out.digest, images.find("scar-lambda/fn-pub:latest")!.digest);
  assert.equal(out.imageUri, `${reg.host}/fn-pub@${out.digest}`);
  assert.ok(out.bytesUploaded > 1_000_000, "busybox went up");
  assert.deepEqual(lines.slice(0, 2), ["Creating ECR repository: fn-pub", "Pushing new image to ECR ..."]);
  assert.match(lines[2]!, /: \d.* uploaded, 0 blobs already there, 0 mounted$/);
  const back = await new ImageStore({
    dataDir: join(work, "back"),
    credentials: new StaticCredentials({ [reg.host]: { username: "AWS", password: PASSWORD } }),
  }).pull(`${reg.host}/fn-pub:latest`);
  assert.equal(back.digest, out.digest);
});

test("SCAR's rule: an ECR image without create_image is used as it is, in its own region", async () => {
  ecrMock.on(DescribeImagesCommand).resolves({ imageDetails: [{ imageDigest: "sha256:abc" }] });
  const lines: string[] = [];
  const image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/prebuilt";
  const out = await publisher().publish(
    spec("fn-pre", { image }),
    {},
    { region: "us-east-1", onProgress: (l) => lines.push(l) },
  );
  assert.deepEqual(out, {
    imageUri: `${image}:latest`,
    digest: "sha256:abc",
    bytesUploaded: 0,
    blobsSkipped: 0,
    blobsMounted: 0,
  });
  assert.deepEqual(lines, ["Image already prepared in ECR."]);
  assert.deepEqual(regions, ["eu-west-1"]);
  assert.equal(builds.length, 0);
  assert.deepEqual(ecrMock.commandCalls(DescribeImagesCommand)[0]!.args[0].input, {
    registryId: "123456789012",
    repositoryName: "prebuilt",
    imageIds: [{ imageTag: "latest" }],
  });
  assert.equal(ecrMock.commandCalls(CreateRepositoryCommand).length, 0);

  // a missing one is an error before the function is created
  ecrMock.on(DescribeImagesCommand).rejects(new ImageNotFoundException({ message: "nope", $metadata: {} }));
  await assert.rejects(
    publisher().publish(spec("fn-pre", { image: `${image}:v9` }), {}, { region: "us-east-1" }),
    (e: Error) => e instanceof EcrError && /prebuilt:v9 is not in ECR/.test(e.message),
  );

  // create_image: true builds from it instead
  await publisher().publish(spec("fn-rebuilt", { image, create_image: true }), {}, { region: "us-east-1" });
  assert.equal(builds.length, 1);
  assert.deepEqual(builds[0]!.source, { kind: "registry", reference: image });
});

test("refused before any call to AWS: a name ECR cannot take, an image over Lambda's limit", async () => {
  await assert.rejects(
    publisher().publish(spec("MyFunction", { image: "busybox" }), {}, { region: "us-east-1" }),
    (e: Error) => e instanceof EcrError && /'MyFunction' cannot name its ECR repository/.test(e.message),
  );
  assert.equal(builds.length, 0, "not even built");
  oversize = true;
  await assert.rejects(
    publisher().publish(spec("fn-big", { image: "busybox" }), {}, { region: "us-east-1" }),
    (e: Error) => e instanceof EcrError && /over Lambda's limit/.test(e.message),
  );
  assert.equal(ecrMock.calls().length, 0);
});
