/**
 * Every validation rule, with its exact message and position. Lines and columns are 1-based and
 * point at the value to fix (or at the key, for unknown keys).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { serviceNameFor } from "../../src/fdl/names.js";
import { issuesOf, load, onlyError } from "./helpers.js";

/** A one-function FDL; `extra` lines (6-space indented) go under `lambda:` from line 7 on. */
const fn = (extra: string, name = "f1") =>
  `functions:\n  aws:\n  - lambda:\n      name: ${name}\n      container:\n        image: busybox\n${extra}`;
const more = (name: string, extra: string) =>
  `  - lambda:\n      name: ${name}\n      container:\n        image: busybox\n${extra}`;

const cases: [title: string, yaml: string, expected: string][] = [
  // YAML itself
  [
    "a YAML syntax error is an issue with a position, not a stack trace",
    "functions:\n  aws:\n  - lambda:\n      name: f1\n     memory: 5\n",
    "5:1 : YAML syntax error: All mapping items must start at the same column",
  ],
  [
    "a repeated key",
    "functions:\n  aws:\n  - lambda:\n      name: f1\n      name: f2\n",
    "5:7 : YAML syntax error: Map keys must be unique",
  ],
  [
    "an empty file",
    "",
    "1:1 : the file is empty; an FDL starts with `functions:` (see scar validate --help)",
  ],
  [
    "no functions",
    "storage_providers: {}\n",
    "1:1 : no functions defined: add `functions:` with an `aws:` or `oscar:` list",
  ],
  [
    "functions.aws is not a list",
    "functions:\n  aws:\n    lambda: {}\n",
    "3:5 functions.aws: functions.aws must be a list: each item starts with `- lambda:`",
  ],
  [
    "an aws item without lambda",
    "functions:\n  aws:\n  - name: x\n",
    "3:5 functions.aws[0]: this function has no `lambda:` section; add `lambda: {name: ..., container: {image: ...}}`",
  ],
  // names, types, ranges
  [
    "function name (AWS rule)",
    fn("", "my function"),
    "4:13 functions.aws[0].lambda.name: 'my function' is not a valid function name: use 1 to 64 letters, digits, '-' or '_' (AWS Lambda's rule); e.g. 'my-function'",
  ],
  [
    "memory below 128",
    fn("      memory: 64\n"),
    "7:15 functions.aws[0].lambda.memory: memory 64 is out of range: set a whole number of MB from 128 to 10240",
  ],
  [
    "memory above 10240",
    fn("      memory: 20000\n"),
    "7:15 functions.aws[0].lambda.memory: memory 20000 is out of range: set a whole number of MB from 128 to 10240",
  ],
  [
    "memory that is not an amount",
    fn("      memory: lots\n"),
    '7:15 functions.aws[0].lambda.memory: memory "lots" is not an amount of memory: set a whole number of MB from 128 to 10240, or an amount such as 1Gi',
  ],
  [
    "timeout above 900 in lambda mode",
    fn("      timeout: 1000\n"),
    "7:16 functions.aws[0].lambda.timeout: timeout 1000 is out of range: set a whole number of seconds from 1 to 900 (Lambda's limit), or use execution_mode: batch for longer jobs (batch jobs have no timeout)",
  ],
  [
    "timeout given as text",
    fn("      timeout: '300'\n"),
    "7:16 functions.aws[0].lambda.timeout: must be a number, not the text '300'",
  ],
  [
    "timeout_threshold not below timeout",
    "functions:\n  aws:\n  - lambda:\n      name: f1\n      timeout: 10\n      container:\n        image: busybox\n        timeout_threshold: 10\n",
    "8:28 functions.aws[0].lambda.container.timeout_threshold: timeout_threshold (10 s) must be smaller than timeout (10 s): the script is stopped 10 s before the timeout to leave time for uploading outputs",
  ],
  [
    "execution_mode values",
    fn("      execution_mode: fast\n"),
    "7:23 functions.aws[0].lambda.execution_mode: must be one of lambda, lambda-batch, batch (got the text 'fast')",
  ],
  [
    "log level",
    fn("      log_level: LOUD\n"),
    "7:18 functions.aws[0].lambda.log_level: log level 'LOUD' is not one of CRITICAL, ERROR, WARNING, INFO, DEBUG",
  ],
  [
    "architecture",
    fn("      architectures: [sparc]\n"),
    "7:23 functions.aws[0].lambda.architectures[0]: architecture 'sparc' is not one of x86_64, arm64",
  ],
  [
    "no image",
    "functions:\n  aws:\n  - lambda:\n      name: f1\n",
    "4:7 functions.aws[0].lambda.container: no container image: set lambda.container.image (e.g. grycap/cowsay) or lambda.container.image_file (a `docker save` tarball)",
  ],
  [
    "environment variable name",
    "functions:\n  aws:\n  - lambda:\n      name: f1\n      container:\n        image: busybox\n        environment:\n          Variables:\n            1BAD: x\n",
    "9:13 functions.aws[0].lambda.container.environment.Variables.1BAD: '1BAD' is not a valid variable name; use letters, digits and '_', not starting with a digit",
  ],
  // storage providers and paths
  [
    "storage_provider that is not defined",
    fn("      input:\n      - storage_provider: minio.other\n        path: bk1/in\n"),
    "8:27 functions.aws[0].lambda.input[0].storage_provider: storage provider 'minio.other' is not defined; define it under storage_providers.minio.other or use one of: s3.default, minio.default",
  ],
  [
    "storage_provider of an unknown type",
    fn("      input:\n      - storage_provider: ftp\n        path: bk1/in\n"),
    "8:27 functions.aws[0].lambda.input[0].storage_provider: unknown storage provider type 'ftp' in 'ftp'; use one of s3, minio, onedata, webdav, rucio",
  ],
  [
    "a defined provider without its credentials",
    `${fn("      input:\n      - storage_provider: s3.my_s3\n        path: bk1/in\n")}storage_providers:\n  s3:\n    my_s3:\n      access_key: AK\n`,
    "12:5 storage_providers.s3.my_s3: 's3.my_s3' needs 'secret_key'; add it under storage_providers.s3.my_s3",
  ],
  [
    "a provider type that does not exist",
    `${fn("")}storage_providers:\n  ftp:\n    x: {}\n`,
    "8:3 storage_providers.ftp: unknown storage provider type 'ftp'; use one of s3, minio, onedata, webdav, rucio",
  ],
  [
    "path with a leading slash",
    fn("      input:\n      - path: /bucket/in\n"),
    "8:15 functions.aws[0].lambda.input[0].path: '/bucket/in' starts with '/'; write it as bucket[/folder...], e.g. 'bucket/in'",
  ],
  [
    "path with an empty folder",
    fn("      input:\n      - path: bucket//in\n"),
    "8:15 functions.aws[0].lambda.input[0].path: 'bucket//in' has an empty folder name ('//'); write it as bucket[/folder...]",
  ],
  [
    "bucket name too short",
    fn("      output:\n      - path: ab/out\n"),
    "8:15 functions.aws[0].lambda.output[0].path: 'ab' is not a valid bucket name: it has 2 characters; use 3 to 63",
  ],
  [
    "bucket name like an IP address",
    fn("      output:\n      - path: 192.168.1.1/out\n"),
    "8:15 functions.aws[0].lambda.output[0].path: '192.168.1.1' is not a valid bucket name: it may not look like an IP address",
  ],
  [
    "bucket name with capitals",
    fn("      output:\n      - path: MyBucket/out\n"),
    "8:15 functions.aws[0].lambda.output[0].path: 'MyBucket' is not a valid bucket name: use lower-case letters only ('mybucket')",
  ],
  [
    "bucket name with an underscore",
    fn("      output:\n      - path: my_bucket/out\n"),
    "8:15 functions.aws[0].lambda.output[0].path: 'my_bucket' is not a valid bucket name: '_' is not allowed; use lower-case letters, digits, '.' and '-'",
  ],
  // batch
  [
    "batch vcpus",
    fn("    batch:\n      vcpus: 0\n"),
    "8:14 functions.aws[0].batch.vcpus: vcpus 0 must be a whole number, at least 1",
  ],
  [
    "batch memory",
    fn("    batch:\n      memory: 2\n"),
    "8:15 functions.aws[0].batch.memory: batch memory 2 must be a whole number of MiB, at least 4",
  ],
  [
    "batch compute environment type",
    fn("    batch:\n      compute_resources:\n        type: SPOTTY\n"),
    "9:15 functions.aws[0].batch.compute_resources.type: compute environment type 'SPOTTY' is not one of EC2, SPOT, FARGATE, FARGATE_SPOT",
  ],
  // workflows
  [
    "output inside the function's own input",
    fn("      input:\n      - path: bk1/in\n      output:\n      - path: bk1/in/out\n"),
    "10:15 functions.aws[0].lambda.output[0].path: output 'bk1/in/out' is inside this function's own input 'bk1/in': every result would trigger the function again, endlessly; write results to a folder outside the input, e.g. 'bk1/output'",
  ],
  [
    "output equal to the input",
    fn("      input:\n      - path: bk1/in\n      output:\n      - path: bk1/in\n"),
    "10:15 functions.aws[0].lambda.output[0].path: output 'bk1/in' is inside this function's own input 'bk1/in': every result would trigger the function again, endlessly; write results to a folder outside the input, e.g. 'bk1/output'",
  ],
  [
    "output anywhere in a bucket the function listens to as a whole",
    fn("      input:\n      - path: bk1\n      output:\n      - path: bk1/out\n"),
    "10:15 functions.aws[0].lambda.output[0].path: output 'bk1/out' is inside this function's own input 'bk1': every result would trigger the function again, endlessly; write results to a folder outside the input, e.g. 'bk1/output'",
  ],
  [
    "a cycle through three functions",
    fn("      input:\n      - path: bk1/a\n      output:\n      - path: bk1/b\n", "fa") +
      more("fb", "      input:\n      - path: bk1/b\n      output:\n      - path: bk1/c\n") +
      more("fc", "      input:\n      - path: bk1/c\n      output:\n      - path: bk1/a\n"),
    "10:15 functions.aws[0].lambda.output[0].path: these functions form a loop: fa -> fb -> fc -> fa; each one's output triggers the next, endlessly. Send the last step's results to a folder that is no function's input",
  ],
  [
    "overlapping input prefixes of two functions on one bucket",
    fn("      input:\n      - path: bk1/in\n", "fa") + more("fb", "      input:\n      - path: bk1/in/sub\n"),
    "14:15 functions.aws[1].lambda.input[0].path: input 'bk1/in/sub' overlaps the input 'bk1/in' of function 'fa': notifications on one bucket cannot have overlapping prefixes (S3 rejects them, and one upload would start both); use folders side by side, e.g. 'bk1/fb-input'",
  ],
  [
    "two functions on the same input",
    fn("      input:\n      - path: bk1/in\n", "fa") + more("fb", "      input:\n      - path: bk1/in\n"),
    "14:15 functions.aws[1].lambda.input[0].path: input 'bk1/in' overlaps the input 'bk1/in' of function 'fa': notifications on one bucket cannot have overlapping prefixes (S3 rejects them, and one upload would start both); use folders side by side, e.g. 'bk1/fb-input'",
  ],
  [
    "a whole-bucket input overlaps any other input on that bucket",
    fn("      input:\n      - path: bk1\n      - path: bk1/x\n"),
    "9:15 functions.aws[0].lambda.input[1].path: input 'bk1/x' overlaps another input of this function: notifications on one bucket cannot have overlapping prefixes (S3 rejects them, and one upload would start both); use folders side by side, e.g. 'bk1/f1-input'",
  ],
  [
    "two functions with one name",
    fn("") + more("f1", ""),
    "8:13 functions.aws[1].lambda.name: the name 'f1' is already used by the function at line 3; names must be unique",
  ],
  // OSCAR
  [
    "OSCAR service name (Kubernetes rule)",
    "functions:\n  oscar:\n  - my_oscar:\n      name: My_Service\n      image: busybox\n",
    "4:13 functions.oscar[0].my_oscar.name: 'My_Service' is not a valid service name: use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit; e.g. 'my-service'",
  ],
  [
    "OSCAR memory without a unit",
    "functions:\n  oscar:\n  - my_oscar:\n      name: svc\n      image: busybox\n      memory: 512\n",
    "6:15 functions.oscar[0].my_oscar.memory: memory 512 is not an amount of memory: write it with a unit, e.g. 256Mi or 1Gi",
  ],
  [
    "OSCAR cpu",
    "functions:\n  oscar:\n  - my_oscar:\n      name: svc\n      image: busybox\n      cpu: fast\n",
    `6:12 functions.oscar[0].my_oscar.cpu: cpu "fast" is not an amount of CPU: write cores such as '0.5' or '1', or millicores such as '500m'`,
  ],
  [
    "OSCAR min_scale above max_scale",
    "functions:\n  oscar:\n  - my_oscar:\n      name: svc\n      image: busybox\n      synchronous:\n        min_scale: 3\n        max_scale: 1\n",
    "7:20 functions.oscar[0].my_oscar.synchronous.min_scale: min_scale (3) is larger than max_scale (1)",
  ],
  [
    "OSCAR item that is not {cluster: service}",
    "functions:\n  oscar:\n  - name: svc\n    image: busybox\n",
    "3:5 functions.oscar[0]: each functions.oscar item must be one cluster id mapping to a service: `- my_oscar: {name: ..., image: ...}`",
  ],
  [
    "OSCAR service without image",
    "functions:\n  oscar:\n  - my_oscar:\n      name: svc\n",
    "4:7 functions.oscar[0].my_oscar.image: no container image: set image (e.g. grycap/cowsay)",
  ],
];

for (const [title, yaml, expected] of cases) {
  test(title, () => assert.equal(onlyError(yaml), expected));
}

test("scripts and image files must exist, relative to the FDL's folder", () => {
  assert.match(
    onlyError(fn("      init_script: nothere.sh\n")),
    /^7:20 functions\.aws\[0\]\.lambda\.init_script: file 'nothere\.sh' not found \(looked for \/.*\/nothere\.sh\); paths are relative to the FDL file's folder$/,
  );
  assert.match(
    onlyError(fn("      run_script: ../nothere.sh\n")),
    /^7:19 functions\.aws\[0\]\.lambda\.run_script: file '\.\.\/nothere\.sh' not found/,
  );
  assert.match(
    onlyError(
      "functions:\n  aws:\n  - lambda:\n      name: f1\n      container:\n        image_file: cow.tar.gz\n",
    ),
    /^6:21 functions\.aws\[0\]\.lambda\.container\.image_file: file 'cow\.tar\.gz' not found/,
  );
  assert.match(onlyError(fn("      init_script: .\n")), /^7:20 .*: '\.' is a folder; name a file$/);
  assert.equal(load(fn("      init_script: script.sh\n")).functions[0]!.script?.endsWith("/script.sh"), true);
});

test("all problems of a file are reported at once, sorted by position", () => {
  const issues = issuesOf(
    "functions:\n  aws:\n  - lambda:\n      name: bad name\n      memory: 1\n      container:\n        image: busybox\n      input:\n      - path: B/in\n",
  );
  assert.deepEqual(
    issues.map((i) => `${i.line}:${i.severity}`),
    ["4:error", "5:error", "9:error"],
  );
});

test("memory as an amount, and an input below an output: allowed, the latter with a warning", () => {
  const r = load(
    fn("      memory: 1Gi\n      input:\n      - path: bk1/out/sub\n      output:\n      - path: bk1/out\n"),
  );
  assert.equal(r.functions[0]!.memory, 1024);
  // An input below an output can loop if the script writes that sub-folder: a warning.
  assert.deepEqual(
    r.warnings.map((w) => `${w.line}:${w.column} ${w.message}`),
    [
      "11:15 the input 'bk1/out/sub' is a sub-folder of output 'bk1/out': if the script writes into 'sub/' under $TMP_OUTPUT_DIR, the function triggers itself",
    ],
  );
});

test("the 900 s timeout limit holds in batch mode too (the Lambda function that hands over keeps it)", () => {
  assert.match(
    onlyError(fn("      execution_mode: batch\n      timeout: 3600\n")),
    /^8:16 .*timeout 3600 is out of range/,
  );
});

test("unknown keys that resemble no known key are kept and reported as warnings", () => {
  const r = load(
    "functions:\n  aws:\n  - lambda:\n      name: f1\n      colour: blue\n      container:\n        image: busybox\n        gpu: true\nextra_top: 1\n",
  );
  assert.deepEqual(
    r.warnings.map((w) => `${w.line}:${w.column} ${w.path}: ${w.message}`),
    [
      "5:7 functions.aws[0].lambda.colour: unknown key 'colour' (kept, not used by scar)",
      "8:9 functions.aws[0].lambda.container.gpu: unknown key 'gpu' (kept, not used by scar)",
      "9:1 extra_top: unknown key 'extra_top' (kept, not used by scar)",
    ],
  );
  const lambda = r.functions[0]!.raw.lambda as Record<string, unknown>;
  assert.equal(lambda.colour, "blue", "the unknown key is kept");
  assert.equal((lambda.container as Record<string, unknown>).gpu, true);
});

test("a near miss of a known key is an error naming the key it misspells, at the misspelt key", () => {
  const errors = (yaml: string) =>
    issuesOf(yaml)
      .filter((i) => i.severity === "error")
      .map((e) => `${e.line}:${e.column} ${e.path}: ${e.message}`);
  assert.deepEqual(errors(fn("      memmory: 1024\n      init_scrpt: script.sh\n")), [
    "7:7 functions.aws[0].lambda.memmory: unknown key 'memmory': did you mean 'memory'? Rename it; as written, scar would ignore its value",
    "8:7 functions.aws[0].lambda.init_scrpt: unknown key 'init_scrpt': did you mean 'init_script'? Rename it; as written, scar would ignore its value",
  ]);
  // Only keys valid at that place count: `memroy` under container is not a near miss of lambda.memory.
  assert.deepEqual(
    errors(
      "functions:\n  aws:\n  - lambda:\n      name: f1\n      container:\n        imgae: busybox\n",
    ).filter((e) => e.includes("imgae")),
    [
      "6:9 functions.aws[0].lambda.container.imgae: unknown key 'imgae': did you mean 'image'? Rename it; as written, scar would ignore its value",
    ],
  );
  assert.deepEqual(
    errors(
      "functions:\n  oscar:\n  - my_oscar:\n      name: svc\n      image: busybox\n      scirpt: script.sh\n",
    ),
    [
      "6:7 functions.oscar[0].my_oscar.scirpt: unknown key 'scirpt': did you mean 'script'? Rename it; as written, scar would ignore its value",
    ],
  );
  assert.match(
    errors("function:\n  aws:\n  - lambda:\n      name: f1\n")[0]!,
    /^1:1 function: unknown key 'function': did you mean 'functions'\?/,
  );
});

test("an unknown OSCAR key is passed through with a warning", () => {
  const r = load(
    "functions:\n  oscar:\n  - my_oscar:\n      name: svc\n      image: busybox\n      new_oscar_feature: {a: 1}\n",
  );
  assert.equal(r.warnings.length, 1);
  assert.equal(r.warnings[0]!.message, "unknown key 'new_oscar_feature' (kept and passed to OSCAR)");
  assert.deepEqual(r.functions[0]!.raw.new_oscar_feature, { a: 1 });
});

test("a variable without a value becomes empty text, with a warning", () => {
  const r = load(
    "functions:\n  aws:\n  - lambda:\n      name: f1\n      container:\n        image: busybox\n        environment:\n          Variables:\n            EMPTY:\n",
  );
  assert.deepEqual(r.functions[0]!.environment, { EMPTY: "" });
  assert.equal(r.warnings[0]!.line, 9);
});

test("lambda.timeout_threshold (where SCAR's -tt put it) beats scar.cfg's container default", () => {
  const f = load(fn("      timeout: 2\n      timeout_threshold: 1\n")).functions[0]!;
  assert.equal(f.timeout_threshold, 1);
  assert.equal(
    onlyError(fn("      timeout: 2\n      timeout_threshold: 5\n")),
    "8:26 functions.aws[0].lambda.timeout_threshold: timeout_threshold (5 s) must be smaller than timeout (2 s): the script is stopped 5 s before the timeout to leave time for uploading outputs",
  );
});

test("scar's engine settings: network none|host, concurrency, retries, in SCAR and OSCAR functions", () => {
  const aws = load(
    "functions:\n  aws:\n  - lambda:\n      name: f1\n      concurrency: 2\n      retries: 0\n      container:\n        image: busybox\n        network: host\n",
  ).functions[0]!;
  assert.deepEqual([aws.network, aws.concurrency, aws.retries], ["host", 2, 0]);
  const oscar = load(
    "functions:\n  oscar:\n  - my_oscar:\n      name: s1\n      image: busybox\n      network: none\n      concurrency: 1\n      retries: 3\n",
  ).functions[0]!;
  assert.deepEqual([oscar.network, oscar.concurrency, oscar.retries], ["none", 1, 3]);
  assert.equal(load(fn("")).functions[0]!.network, undefined);
  assert.match(onlyError(fn("        network: bridge\n")), /^7:18 .*network 'bridge' is not none or host/);
  assert.match(onlyError(fn("      concurrency: 0\n")), /concurrency 0 must be a whole number, at least 1/);
  assert.match(onlyError(fn("      retries: 11\n")), /retries 11 must be a whole number from 0 to 10/);
});

test("function names: one rule per platform, the error at the name the user wrote, with a name to use", () => {
  const yaml = fn("", "My_Func");
  // Lambda's rule (scar's engine for functions.aws): capitals and '_' are fine.
  assert.equal(load(yaml).functions[0]!.name, "My_Func");
  // An OSCAR cluster's rule (scar validate/init --target oscar:<cluster>): why not, and what instead.
  assert.equal(
    onlyError(yaml, { nameRule: "service" }),
    "4:13 functions.aws[0].lambda.name: 'My_Func' is a valid AWS Lambda name, but OSCAR clusters make Kubernetes objects of their services, whose names are at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit; e.g. 'my-func'",
  );
  // A name from the command line is reported against the command line.
  const cli = issuesOf(fn("", "f1"), {
    nameRule: "service",
    overrides: { aws: { lambda: { name: "A_B" } } },
  });
  assert.deepEqual(
    cli.filter((i) => i.severity === "error").map((i) => `${i.file} ${i.path}`),
    ["(command line) lambda.name"],
  );
  assert.equal(serviceNameFor("__My__Big_Function__"), "my-big-function");
  assert.equal(serviceNameFor("___"), undefined);
  assert.equal(serviceNameFor(`A${"b".repeat(70)}`), `a${"b".repeat(62)}`);
});

test("scar's engine settings: seccomp default|unconfined, ephemeral_storage in Lambda's MB range", () => {
  assert.equal(load(fn("        seccomp: unconfined\n")).functions[0]!.seccomp, "unconfined");
  const oscar = load(
    "functions:\n  oscar:\n  - my_oscar:\n      name: s1\n      image: busybox\n      seccomp: default\n",
  ).functions[0]!;
  assert.equal(oscar.seccomp, "default");
  assert.equal(load(fn("")).functions[0]!.seccomp, undefined);
  assert.match(onlyError(fn("        seccomp: off\n")), /^7:18 .*seccomp 'off' is not default or unconfined/);
  assert.equal(load(fn("      ephemeral_storage: 1024\n")).functions[0]!.ephemeral_storage, 1024);
  assert.equal(load(fn("")).functions[0]!.ephemeral_storage, undefined);
  assert.match(
    onlyError(fn("      ephemeral_storage: 100\n")),
    /ephemeral_storage 100 must be a whole number of MB from 512 to 10240/,
  );
});

test("scar's engine settings: isolation environment|invocation, in SCAR and OSCAR functions", () => {
  assert.equal(load(fn("        isolation: invocation\n")).functions[0]!.isolation, "invocation");
  assert.equal(load(fn("        isolation: environment\n")).functions[0]!.isolation, "environment");
  const oscar = load(
    "functions:\n  oscar:\n  - my_oscar:\n      name: s1\n      image: busybox\n      isolation: invocation\n",
  ).functions[0]!;
  assert.equal(oscar.isolation, "invocation");
  assert.equal(load(fn("")).functions[0]!.isolation, undefined, "absent: the engine's default");
  assert.equal(
    onlyError(fn("        isolation: container\n")),
    "7:20 functions.aws[0].lambda.container.isolation: isolation 'container' is not environment or invocation (invocation gives every invocation a fresh container instead of a reused warm one)",
  );
  assert.match(
    onlyError(
      "functions:\n  oscar:\n  - my_oscar:\n      name: s1\n      image: busybox\n      isolation: fresh\n",
    ),
    /^6:18 functions\.oscar\[0\]\.my_oscar\.isolation: isolation 'fresh' is not environment or invocation/,
  );
  // A misspelt key would leave the function sharing containers without a sound: an error.
  assert.equal(
    onlyError(fn("        isolaton: invocation\n")),
    "7:9 functions.aws[0].lambda.container.isolaton: unknown key 'isolaton': did you mean 'isolation'? Rename it; as written, scar would ignore its value",
  );
  assert.match(
    onlyError(
      "functions:\n  oscar:\n  - my_oscar:\n      name: s1\n      image: busybox\n      isolaiton: invocation\n",
    ),
    /^6:7 .*unknown key 'isolaiton': did you mean 'isolation'\?/,
  );
});
