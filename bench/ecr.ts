/**
 * The push of a function image to ECR, next to `skopeo copy` of the same image to the same registry
 * (no assertions). The registry is Debian's docker-registry on loopback with htpasswd basic auth for
 * the user AWS, behind a proxy here that counts the bytes of blob uploads; ECR's API is answered by an
 * SDK mock handing out that registry, as in the tests (test/lambda/image/ecr.test.ts).
 *
 * The image is what a deploy sends: a base (busybox plus this host's /usr/lib/python3.11 without its
 * tests, ~15 MB gzipped) and a small layer holding the script. Two cases, alternating rounds:
 *   first push   into an empty repository: scar pushToEcr vs `skopeo copy oci:DIR docker://…`
 *   second push  after a script edit, into the same repository (only the small layer is new)
 * Each round sees the registry through a new proxy port, so neither scar's push ledger nor skopeo's
 * blob info cache can mount blobs from an earlier round's repositories.
 * Then, for scar alone (skopeo copies, it does not build): the function image built from that image
 * after a script edit (scar's runtime layer + /var/task) and pushed, time and bytes.
 * Usage: node dist/bench/ecr.js [rounds=5] (3 with --quick).
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import {
  CreateRepositoryCommand,
  DescribeRepositoriesCommand,
  ECRClient,
  GetAuthorizationTokenCommand,
} from "@aws-sdk/client-ecr";
import { mockClient } from "aws-sdk-client-mock";
import { stringify } from "yaml";
import { human } from "../src/cli/progress.js";
import { ImageStore } from "../src/engine/images/index.js";
import { tarDirectory } from "../src/engine/images/tarwriter.js";
import { parseFdl } from "../src/fdl/load.js";
import { buildFunctionImage } from "../src/lambda/image/builder.js";
import { pushToEcr } from "../src/lambda/image/ecr.js";
import { hasCommand, tempDir } from "../test/engine/images/helpers.js";
import { busyboxLayer, startRegistry, uploadImage } from "../test/engine/images/registry-harness.js";
import { alternate, cpuMsNow, describe, ratio } from "./lib/rounds.js";

const QUICK = process.env.SCAR_BENCH_QUICK === "1";
const ROUNDS = Number(process.argv[2] ?? (QUICK ? 3 : 5));
const PASSWORD = "bench-password";

async function tarOf(dir: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of tarDirectory(dir)) parts.push(c);
  return Buffer.concat(parts);
}

/** A pass-through proxy that adds up the request bytes of blob uploads (PATCH and PUT). */
async function countingProxy(target: string) {
  const counter = { bytes: 0 };
  const server = http.createServer((req, res) => {
    const upload = (req.method === "PUT" || req.method === "PATCH") && req.url?.includes("/blobs/uploads/");
    const up = http.request(
      {
        host: "127.0.0.1",
        port: Number(target.split(":")[1]),
        path: req.url,
        method: req.method,
        headers: req.headers,
      },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    if (upload) req.on("data", (c: Buffer) => (counter.bytes += c.length));
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    counter,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The image as an OCI layout (skopeo's source), its blobs linked from the store: the same bytes. */
function ociLayout(images: ImageStore, ref: string, dir: string): void {
  const rec = images.find(ref)!;
  fs.mkdirSync(join(dir, "blobs/sha256"), { recursive: true });
  for (const d of [rec.digest, rec.configDigest, ...rec.layers.map((l) => l.digest)]) {
    const to = join(dir, "blobs/sha256", d.slice(7));
    if (!fs.existsSync(to)) fs.linkSync(images.store.blobPath(d), to);
  }
  fs.writeFileSync(join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  const manifest = {
    mediaType: rec.mediaType,
    digest: rec.digest,
    size: images.store.blobSize(rec.digest),
    annotations: { "org.opencontainers.image.ref.name": "latest" },
  };
  fs.writeFileSync(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [manifest] }));
}

async function main() {
  const work = tempDir("scar-bench-ecr-");
  const src = await startRegistry();
  const reg = await startRegistry({ auth: "basic", user: "AWS", password: PASSWORD });
  // a fresh proxy (a new host:port) each round: to both scar's push ledger and skopeo's blob info
  // cache it is a registry never seen, so nothing is mounted from an earlier round's repositories
  let proxy = await countingProxy(reg.host);
  const freshRegistry = async () => {
    await proxy.close();
    proxy = await countingProxy(reg.host);
  };
  const ecr = new ECRClient({ region: "us-east-1", credentials: { accessKeyId: "x", secretAccessKey: "y" } });
  const mock = mockClient(ecr);
  const repos = new Set<string>();
  mock.on(DescribeRepositoriesCommand).callsFake((i: { repositoryNames?: string[] }) => {
    const name = i.repositoryNames![0]!;
    if (!repos.has(name)) throw Object.assign(new Error("missing"), { name: "RepositoryNotFoundException" });
    return { repositories: [{ repositoryUri: `${proxy.host}/${name}`, registryId: "123456789012" }] };
  });
  mock.on(CreateRepositoryCommand).callsFake((i: { repositoryName?: string }) => {
    repos.add(i.repositoryName!);
    return { repository: { repositoryUri: `${proxy.host}/${i.repositoryName}`, registryId: "123456789012" } };
  });
  mock.on(GetAuthorizationTokenCommand).callsFake(() => ({
    authorizationData: [
      {
        authorizationToken: Buffer.from(`AWS:${PASSWORD}`).toString("base64"),
        proxyEndpoint: `http://${proxy.host}`,
      },
    ],
  }));

  try {
    const py = join(work, "py");
    const lib = "/usr/lib/python3.11";
    const base = [await busyboxLayer()];
    if (fs.existsSync(lib)) {
      fs.cpSync(lib, join(py, "usr/lib/python3.11"), {
        recursive: true,
        verbatimSymlinks: true,
        filter: (s) => !s.includes("/test"),
      });
      base.push(await tarOf(py));
    }
    const script = async (text: string) => {
      const d = join(work, `script-${text.length}`);
      fs.mkdirSync(join(d, "var/task"), { recursive: true });
      fs.writeFileSync(join(d, "var/task/script.sh"), text);
      return tarOf(d);
    };
    await uploadImage(src.host, "fn", "1", [...base, await script("echo one\n")]);
    await uploadImage(src.host, "fn", "2", [...base, await script("echo two, edited\n")]);
    const images = new ImageStore({ dataDir: join(work, "store") });
    const v1 = `${src.host}/fn:1`;
    const v2 = `${src.host}/fn:2`;
    await images.pull(v1);
    await images.pull(v2);
    ociLayout(images, v1, join(work, "oci1"));
    ociLayout(images, v2, join(work, "oci2"));
    const size = (ref: string) => {
      const r = images.find(ref)!;
      return r.layers.reduce((a, l) => a + l.size, 0);
    };
    process.stdout.write(
      `image: ${images.find(v1)!.layers.length} layers, ${human(size(v1))} compressed; the script layer ${human(images.find(v1)!.layers.at(-1)!.size)}\n`,
    );
    const peer = hasCommand("skopeo");
    if (!peer) process.stdout.write("skopeo missing: peer not measured\n");
    const bytes = {
      scar1: [] as number[],
      scar2: [] as number[],
      skopeo1: [] as number[],
      skopeo2: [] as number[],
    };
    let n = 0;
    const scarPush = async (ref: string, repo: string) => {
      const before = proxy.counter.bytes;
      const out = await pushToEcr({ images, ecr, ref, repository: repo });
      return { sent: proxy.counter.bytes - before, reported: out.bytesUploaded };
    };
    // async: the counting proxy lives in this process's event loop
    const skopeo = async (layout: string, repo: string) => {
      const before = proxy.counter.bytes;
      const args = [
        "copy",
        "--quiet",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        `AWS:${PASSWORD}`,
        `oci:${join(work, layout)}:latest`,
        `docker://${proxy.host}/${repo}:latest`,
      ];
      const child = spawn("skopeo", args, { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d) => {
        stderr += d;
      });
      const code = await new Promise<number | null>((r) => child.on("close", r));
      if (code !== 0) throw new Error(`skopeo copy: ${stderr}`);
      return proxy.counter.bytes - before;
    };
    const timed = async (f: () => Promise<unknown> | unknown) => {
      const t0 = performance.now();
      await f();
      return performance.now() - t0;
    };

    const first = await alternate(
      [
        {
          name: "scar push",
          round: async () => {
            await freshRegistry();
            const repo = `first/s${n++}`;
            let sent = 0;
            const ms = await timed(async () => {
              sent = (await scarPush(v1, repo)).sent;
            });
            bytes.scar1.push(sent);
            return { value: ms, cpuUnits: 1 };
          },
        },
        ...(peer
          ? [
              {
                name: "skopeo copy",
                round: async () => {
                  await freshRegistry();
                  const repo = `first/k${n++}`;
                  let sent = 0;
                  const ms = await timed(async () => {
                    sent = await skopeo("oci1", repo);
                  });
                  bytes.skopeo1.push(sent);
                  return { value: ms, cpuUnits: 1 };
                },
              },
            ]
          : []),
      ],
      ROUNDS,
    );
    const second = await alternate(
      [
        {
          name: "scar push",
          round: async () => {
            await freshRegistry();
            const repo = `second/s${n++}`;
            const c0 = cpuMsNow();
            await scarPush(v1, repo); // the deploy before the edit: not counted
            const excluded = cpuMsNow() - c0;
            let sent = 0;
            const ms = await timed(async () => {
              sent = (await scarPush(v2, repo)).sent;
            });
            bytes.scar2.push(sent);
            return { value: ms, cpuUnits: 1, cpuExcludeMs: excluded };
          },
        },
        ...(peer
          ? [
              {
                name: "skopeo copy",
                round: async () => {
                  await freshRegistry();
                  const repo = `second/k${n++}`;
                  const c0 = cpuMsNow();
                  await skopeo("oci1", repo); // the deploy before the edit: not counted
                  const excluded = cpuMsNow() - c0;
                  let sent = 0;
                  const ms = await timed(async () => {
                    sent = await skopeo("oci2", repo);
                  });
                  bytes.skopeo2.push(sent);
                  return { value: ms, cpuUnits: 1, cpuExcludeMs: excluded };
                },
              },
            ]
          : []),
      ],
      ROUNDS,
    );
    // ---- build + push after a script edit: the function image made from the user's image (scar's
    // runtime layer + /var/task) and pushed; skopeo only copies, so its figure is the copy above
    const fnDir = join(work, "fn");
    fs.mkdirSync(fnDir, { recursive: true });
    const builtRef = "scar-lambda/benchfn:latest";
    const buildOnce = async (script: string) => {
      fs.writeFileSync(join(fnDir, "script.sh"), script);
      const file = join(fnDir, "fn.yaml");
      const text = stringify({
        functions: {
          aws: [
            {
              lambda: {
                name: "benchfn",
                runtime: "image",
                init_script: "script.sh",
                container: { image: v1 },
              },
              iam: { role: "arn:aws:iam::000000000000:role/scar" },
            },
          ],
        },
      });
      fs.writeFileSync(file, text);
      const r = parseFdl(file, text);
      await buildFunctionImage({
        spec: r.functions[0]!,
        storageProviders: r.storage_providers,
        source: { kind: "registry", reference: v1 },
        images,
        tag: builtRef,
      });
    };
    const firstBuildMs = await timed(() => buildOnce("echo first\n"));
    const buildMs: number[] = [];
    const buildBytes: number[] = [];
    let edit = 0;
    const buildPush = await alternate(
      [
        {
          name: "scar build + push",
          round: async () => {
            await freshRegistry();
            const repo = `build/s${n++}`;
            const c0 = cpuMsNow();
            await buildOnce(`echo before ${edit}\n`); // the deploy before the edit: not counted
            await scarPush(builtRef, repo);
            const excluded = cpuMsNow() - c0;
            let sent = 0;
            const ms = await timed(async () => {
              buildMs.push(await timed(() => buildOnce(`echo edited ${edit++}\n`)));
              sent = (await scarPush(builtRef, repo)).sent;
            });
            buildBytes.push(sent);
            return { value: ms, cpuUnits: 1, cpuExcludeMs: excluded };
          },
        },
      ],
      ROUNDS,
    );
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? 0;
    process.stdout.write(`\nfirst push into an empty repository (median of ${ROUNDS}):\n`);
    for (const s of first) process.stdout.write(`  ${describe(s, "ms", "push", 0)}\n`);
    process.stdout.write(
      `  bytes sent: scar ${human(med(bytes.scar1))}${peer ? `, skopeo ${human(med(bytes.skopeo1))}` : ""}\n`,
    );
    if (first[1]) process.stdout.write(`  ${ratio(first[0]!, first[1])}\n`);
    process.stdout.write(`\nsecond push after a script edit, same repository (median of ${ROUNDS}):\n`);
    for (const s of second) process.stdout.write(`  ${describe(s, "ms", "push", 0)}\n`);
    process.stdout.write(
      `  bytes sent: scar ${human(med(bytes.scar2))}${peer ? `, skopeo ${human(med(bytes.skopeo2))}` : ""}\n`,
    );
    if (second[1]) process.stdout.write(`  ${ratio(second[0]!, second[1])}\n`);
    process.stdout.write(
      `\nfunction image build + push after a script edit (median of ${ROUNDS}; the first build, which makes scar's runtime layer, took ${(firstBuildMs / 1000).toFixed(1)} s):\n`,
    );
    for (const s of buildPush) process.stdout.write(`  ${describe(s, "ms", "build + push", 0)}\n`);
    process.stdout.write(
      `  of which the build ${med(buildMs).toFixed(0)} ms; bytes sent: scar ${human(med(buildBytes))}${peer ? `; skopeo copy of an edited image (above): ${human(med(bytes.skopeo2))}, ${second[1] ? `${second[1].value.toFixed(0)} ms` : ""}` : ""}\n`,
    );
  } finally {
    mock.restore();
    await proxy.close();
    await Promise.all([src.stop(), reg.stop()]);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
