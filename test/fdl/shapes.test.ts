import assert from "node:assert/strict";
import { test } from "node:test";
import { loadFdl } from "../../src/fdl/index.js";
import { fixture } from "./helpers.js";

test("minimal SCAR FDL gets scar.cfg defaults", () => {
  const { functions, warnings } = loadFdl(fixture("cowsay.yaml"));
  assert.deepEqual(warnings, []);
  assert.equal(functions.length, 1);
  const f = functions[0]!;
  assert.equal(f.name, "scar-cowsay");
  assert.equal(f.provider, "aws");
  assert.equal(f.image, "grycap/cowsay");
  assert.equal(f.memory, 512);
  assert.equal(f.timeout, 300);
  assert.equal(f.timeout_threshold, 10);
  assert.equal(f.execution_mode, "lambda");
  assert.equal(f.log_level, "INFO");
  assert.deepEqual(f.environment, {});
  assert.deepEqual(f.input, []);
  assert.deepEqual(f.output, []);
  assert.equal(f.batch, undefined);
  assert.deepEqual(f.source, { file: fixture("cowsay.yaml"), path: "functions.aws[0]", line: 3, column: 5 });
});

test("imagemagick: init script resolved against the FDL's folder, S3 input and output", () => {
  const f = loadFdl(fixture("imagemagick.yaml")).functions[0]!;
  assert.equal(f.script, fixture("grayify-image.sh"));
  assert.deepEqual(f.input, [
    {
      storage_provider: "s3.default",
      path: "scar-imagemagick/input",
      bucket: "scar-imagemagick",
      folder: "input",
    },
  ]);
  assert.deepEqual(f.output, [
    {
      storage_provider: "s3.default",
      path: "scar-imagemagick/output",
      bucket: "scar-imagemagick",
      folder: "output",
      suffix: [],
      prefix: [],
    },
  ]);
});

test("ffmpeg: memory from the FDL wins over scar.cfg", () => {
  const f = loadFdl(fixture("ffmpeg.yaml")).functions[0]!;
  assert.equal(f.memory, 2048);
  assert.equal(f.script, fixture("grayify-video.sh"));
});

test("darknet with API gateway and output only", () => {
  const f = loadFdl(fixture("darknet-api.yaml")).functions[0]!;
  assert.equal(f.api_gateway, "darknet");
  assert.equal(f.memory, 3008);
  assert.deepEqual(f.input, []);
  assert.equal(f.output[0]!.path, "scar-darknet/output");
  assert.equal(
    (f.raw.api_gateway as Record<string, unknown>).stage_name,
    "scar",
    "scar.cfg's api_gateway defaults are kept",
  );
});

test("video-process: batch function feeding a lambda function", () => {
  const [split, darknet] = loadFdl(fixture("video-process.yaml")).functions;
  assert.equal(split!.execution_mode, "batch");
  assert.deepEqual(split!.batch, { vcpus: 1, memory: 1024, enable_gpu: false });
  assert.equal(darknet!.execution_mode, "lambda");
  assert.equal(split!.output[0]!.path, darknet!.input[0]!.path);
});

test("av-workflow: multiple outputs with suffix filters, lambda-batch and a GPU batch function", () => {
  const [ffmpeg, audio, yolo] = loadFdl(fixture("av-workflow.yaml")).functions;
  assert.deepEqual(
    ffmpeg!.output.map((o) => [o.path, o.suffix]),
    [
      ["scar-av-workflow/video", ["avi"]],
      ["scar-av-workflow/audio", ["wav"]],
    ],
  );
  assert.equal(ffmpeg!.execution_mode, "lambda-batch");
  assert.equal(ffmpeg!.timeout, 900);
  assert.equal(audio!.execution_mode, "lambda-batch");
  assert.deepEqual(yolo!.batch, { vcpus: 4, memory: 12288, enable_gpu: true });
  const compute = (yolo!.raw.batch as { compute_resources: Record<string, unknown> }).compute_resources;
  // Lists replace (SCAR concatenated them into [m3.medium, g3s.xlarge]); maps merge.
  assert.deepEqual(compute.instance_types, ["g3s.xlarge"]);
  assert.equal(compute.max_v_cpus, 12);
  assert.equal(compute.min_v_cpus, 0);
});

test("every lambda key of SCAR v4 is understood and kept", () => {
  const { functions, warnings } = loadFdl(fixture("cowsay-env.yaml"));
  assert.deepEqual(warnings, []);
  const f = functions[0]!;
  assert.equal(f.script, fixture("test-env.sh"));
  assert.equal(f.run_script, fixture("test-env.sh"));
  assert.deepEqual(f.c_args, ["df", "-h"]);
  assert.equal(f.log_level, "DEBUG");
  assert.equal(f.description, "env dump");
  assert.equal(f.asynchronous, true);
  assert.equal(f.timeout_threshold, 5);
  // YAML numbers become the text the container sees; `yes` stays `yes` (YAML 1.2); "=" inside values survives.
  assert.deepEqual(f.environment, { TEST1: "45", DEBUG: "yes", WITH_EQ: "a=b=c" });
  const lambda = f.raw.lambda as Record<string, unknown>;
  assert.deepEqual(lambda.architectures, ["arm64"]);
  assert.equal(lambda.runtime, "image");
  assert.deepEqual(lambda.vpc, { SubnetIds: ["subnet-1"], SecurityGroupIds: ["sg-1"] });
  assert.equal((lambda.file_system as { LocalMountPath: string }[])[0]!.LocalMountPath, "/mnt/efs");
  assert.deepEqual(lambda.supervisor, {
    version: "1.5.8",
    layer_name: "faas-supervisor",
    license_info: "Apache 2.0",
  });
  assert.deepEqual(lambda.deployment, {
    bucket: "scar-deploy",
    max_payload_size: 52428800,
    max_s3_payload_size: 262144000,
  });
  assert.equal((f.raw.iam as Record<string, unknown>).role, "arn:aws:iam::123456789012:role/scar-role");
  assert.equal((f.raw.cloudwatch as Record<string, unknown>).log_retention_policy_in_days, 7);
  assert.deepEqual(f.raw.ecr, { delete_image: false });
  assert.equal((f.raw.s3 as Record<string, unknown>).region, "eu-west-1");
});

test("OSCAR FDL with several clusters, storage providers, secrets and Kubernetes quantities", () => {
  const { functions, storage_providers, warnings } = loadFdl(fixture("oscar-multi-cluster.yaml"));
  const [classify, report] = functions;
  assert.equal(classify!.provider, "oscar");
  assert.equal(classify!.cluster, "oscar-cluster-1");
  assert.equal(classify!.memory, 2048);
  assert.equal(classify!.cpu, 1);
  assert.equal(classify!.timeout, null);
  assert.equal(classify!.log_level, "DEBUG");
  assert.deepEqual(classify!.environment, { ITERATIONS: "200", DEBUG: "true" });
  assert.deepEqual(classify!.secrets, { API_TOKEN: "s3cr3t" });
  assert.deepEqual(classify!.input[0]!.storage_provider, "minio.default");
  assert.deepEqual(classify!.output[0], {
    storage_provider: "minio.cluster2",
    path: "plants/intermediate",
    bucket: "plants",
    folder: "intermediate",
    suffix: ["jpg", "png"],
    prefix: ["result-"],
  });
  assert.deepEqual(
    (classify!.raw.expose as Record<string, unknown>).api_port,
    5000,
    "OSCAR-only fields pass through",
  );
  assert.equal(report!.cluster, "oscar-cluster-2");
  assert.equal(report!.memory, 512);
  assert.equal(report!.cpu, 0.2, "the cluster default cpu applies");
  assert.equal(report!.input[0]!.storage_provider, "minio.default", "`minio` means minio.default");
  assert.equal(report!.output[0]!.storage_provider, "s3.my_s3");
  assert.deepEqual(Object.keys(storage_providers).sort(), [
    "minio.cluster2",
    "minio.default",
    "s3.default",
    "s3.my_s3",
  ]);
  assert.equal(storage_providers["s3.my_s3"]!.settings.region, "eu-west-1");
  // Neither cluster is in the default scar.cfg: a warning each, not an error (the local target runs them).
  assert.deepEqual(
    warnings.map((w) => [w.line, w.path]),
    [
      [3, "functions.oscar[0].oscar-cluster-1"],
      [32, "functions.oscar[1].oscar-cluster-2"],
    ],
  );
  assert.match(warnings[0]!.message, /cluster 'oscar-cluster-1' is not configured in scar.cfg/);
});

test("hybrid file: an AWS function and an OSCAR service on the configured my_oscar cluster", () => {
  const { functions, warnings } = loadFdl(fixture("mask-detector-hybrid.yaml"));
  assert.deepEqual(warnings, [], "my_oscar is in the default scar.cfg");
  assert.deepEqual(
    functions.map((f) => [f.name, f.provider, f.cluster]),
    [
      ["scar-mask-detector", "aws", undefined],
      ["oscar-anon-and-split", "oscar", "my_oscar"],
    ],
  );
  assert.equal(functions[1]!.output[1]!.storage_provider, "s3.my_s3");
});

test("SCAR 2.x/3.x map keyed by function name is converted, with a warning naming the new form", () => {
  const { functions, warnings } = loadFdl(fixture("legacy-v3.yaml"));
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0]!.line, 1);
  assert.match(warnings[0]!.message, /SCAR 2.x\/3.x format .*`functions: \{aws: \[\{lambda:/);
  const f = functions[0]!;
  assert.equal(f.name, "scar-legacy-imagemagick");
  assert.equal(f.image, "grycap/imagemagick");
  assert.equal(f.memory, 1024);
  assert.equal(f.timeout, 120);
  assert.equal(f.timeout_threshold, 20);
  assert.equal(f.script, fixture("grayify-image.sh"));
  assert.deepEqual(f.environment, { COLOR: "gray" });
  assert.equal(f.input[0]!.path, "scar-legacy/input");
  assert.equal(f.output[0]!.path, "scar-legacy/output");
});
