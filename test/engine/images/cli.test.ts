import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { busyboxRootfs, tempDir } from "./helpers.js";
import { busyboxLayer, type Registry, startRegistry, uploadImage } from "./registry-harness.js";

const bin = new URL("../../../../bin/scar", import.meta.url).pathname;
const work = tempDir("scar-imgcli-");
const dataDir = join(work, "data");
let reg: Registry;

before(async () => {
  reg = await startRegistry();
  await uploadImage(reg.host, "lab/bb", "1", [await busyboxLayer()]);
});
after(async () => {
  await reg?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

let extraEnv: NodeJS.ProcessEnv = {};

function scar(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      SCAR_DATA_DIR: dataDir,
      SCAR_CONFIG_FOLDER: join(work, "cfg"),
      ...extraEnv,
    };
    delete env.NODE_EXTRA_CA_CERTS;
    const p = spawn(bin, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => {
      stdout += d;
    });
    p.stderr.on("data", (d) => {
      stderr += d;
    });
    p.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

test("scar image pull, ls, rm and prune", async () => {
  const pull = await scar("image", "pull", `${reg.host}/lab/bb:1`);
  assert.equal(pull.status, 0, pull.stderr);
  assert.match(pull.stdout, new RegExp(`^${reg.host}/lab/bb:1 sha256:[a-f0-9]{64}\\n$`));
  assert.equal(pull.stderr, "", "no progress without a terminal");

  const again = await scar("image", "pull", "--json", `${reg.host}/lab/bb:1`);
  const j = JSON.parse(again.stdout);
  assert.deepEqual(j.names, [`${reg.host}/lab/bb:1`]);
  assert.equal(j.layers, 1);

  const rootfs = busyboxRootfs(join(work, "rootfs"));
  const imp = await scar("image", "import", rootfs, "--tag", "fn:1", "--change", "CMD /bin/true", "--json");
  assert.equal(imp.status, 0, imp.stderr);
  assert.equal(JSON.parse(imp.stdout).format, "rootfs");

  const ls = await scar("image", "ls");
  assert.match(ls.stdout, /^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE\n/);
  assert.match(ls.stdout, new RegExp(`${reg.host}/lab/bb +1 +[a-f0-9]{12} `));
  assert.match(ls.stdout, /\nfn +1 +[a-f0-9]{12} +just now +2\.0 MB\n/);
  const lsj = JSON.parse((await scar("image", "ls", "--json")).stdout) as { names: string[] }[];
  assert.equal(lsj.length, 2);

  const rm = await scar("image", "rm", "fn:1");
  assert.equal(rm.status, 0, rm.stderr);
  assert.match(rm.stdout, /^Untagged: docker.io\/library\/fn:1\nDeleted: sha256:/);
  const missing = await scar("image", "rm", "fn:1");
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /error: image "fn:1" is not in the local store\nhint: /);

  const prune = await scar("image", "prune", "--all", "--json");
  const pj = JSON.parse(prune.stdout);
  assert.equal(pj.images.length, 1);
  assert.ok(pj.layers >= 1);
  assert.deepEqual(JSON.parse((await scar("image", "ls", "--json")).stdout), []);
  assert.deepEqual(fs.readdirSync(join(dataDir, "images/layers")), []);
  assert.deepEqual(fs.readdirSync(join(dataDir, "images/blobs/sha256")), []);
});

test("scar image errors: bad references, unreachable registries, bad options", async () => {
  const bad = await scar("image", "pull", "Not/A:Ref:");
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /invalid image reference/);
  const port = reg.host.split(":")[1];
  const down = await scar("image", "pull", `127.0.0.1:${Number(port) === 1 ? 2 : 1}/x:1`);
  assert.equal(down.status, 1);
  assert.match(
    down.stderr,
    /^error: registry 127\.0\.0\.1:\d cannot be reached \(it refused the connection\)$/m,
  );
  assert.match(down.stderr, /^hint: get the image another way: 'scar image import'/m);
  const fmt = await scar("image", "import", work, "--format", "zip");
  assert.equal(fmt.status, 2);
  const nofile = await scar("image", "import", join(work, "nope.tar"));
  assert.equal(nofile.status, 1);
  assert.match(nofile.stderr, /no such file or directory/);
});

test("scar image finds the data folder in scar.cfg (local.data_dir, as scar serve and the engine commands do) before $SCAR_DATA_DIR", async () => {
  const cfgDir = join(work, "cfg-data-dir");
  const configured = join(work, "configured-data");
  fs.mkdirSync(cfgDir, { recursive: true });
  fs.writeFileSync(
    join(cfgDir, "scar.cfg"),
    JSON.stringify({ scar: { config_version: "2.0.0" }, local: { data_dir: configured } }),
  );
  extraEnv = { SCAR_CONFIG_FOLDER: cfgDir };
  try {
    const rootfs = busyboxRootfs(join(work, "rootfs-cfg"));
    const imp = await scar("image", "import", rootfs, "--tag", "cfgdir:1", "--json");
    assert.equal(imp.status, 0, imp.stderr);
    assert.ok(fs.existsSync(join(configured, "images")), "the image store is in scar.cfg's data_dir");
    const ls = JSON.parse((await scar("image", "ls", "--json")).stdout) as { names: string[] }[];
    assert.ok(ls.some((i) => i.names.some((n) => n.endsWith("cfgdir:1"))));
    // $SCAR_DATA_DIR (the other tests' folder) does not have it
    extraEnv = {};
    const other = JSON.parse((await scar("image", "ls", "--json")).stdout) as { names: string[] }[];
    assert.ok(!other.some((i) => i.names.some((n) => n.endsWith("cfgdir:1"))));
  } finally {
    extraEnv = {};
  }
});
