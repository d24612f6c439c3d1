import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { DockerCredentials } from "../../../src/engine/images/auth.js";
import { ImageStore } from "../../../src/engine/images/index.js";
import { parseChallenge } from "../../../src/engine/images/registry.js";
import { craftTar, tempDir } from "./helpers.js";
import { mintToken, PASSWORD, type Registry, startRegistry, USER, uploadImage } from "./registry-harness.js";

const work = tempDir("scar-auth-");
let tokenReg: Registry & { token?: Parameters<typeof mintToken>[0] };
let basicReg: Registry;

function dockerConfig(name: string, auths: Record<string, object>): DockerCredentials {
  const p = join(work, name, "config.json");
  fs.mkdirSync(join(work, name), { recursive: true });
  fs.writeFileSync(p, JSON.stringify({ auths }));
  return new DockerCredentials(p);
}

const b64 = (s: string) => Buffer.from(s).toString("base64");
let n = 0;

before(async () => {
  [tokenReg, basicReg] = await Promise.all([
    startRegistry({ auth: "token" }),
    startRegistry({ auth: "basic" }),
  ]);
  const layer = craftTar([{ name: "hello", data: "private" }]);
  const admin = `Bearer ${mintToken(tokenReg.token!, [
    { name: "private/app", actions: ["pull", "push"] },
    { name: "public/app", actions: ["pull", "push"] },
  ])}`;
  await uploadImage(tokenReg.host, "private/app", "1", [layer], { authz: admin });
  await uploadImage(tokenReg.host, "public/app", "1", [layer], { authz: admin });
  await uploadImage(basicReg.host, "team/app", "1", [layer], {
    authz: `Basic ${b64(`${USER}:${PASSWORD}`)}`,
  });
});
after(async () => {
  await tokenReg?.stop();
  await basicReg?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

function store(credentials: DockerCredentials) {
  return new ImageStore({ dataDir: join(work, `store${n++}`), credentials });
}

test("WWW-Authenticate challenges are parsed", () => {
  assert.deepEqual(
    parseChallenge(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
    ),
    {
      scheme: "bearer",
      params: {
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:library/busybox:pull",
      },
    },
  );
  assert.deepEqual(parseChallenge('Basic realm="x"'), { scheme: "basic", params: { realm: "x" } });
});

test("bearer token flow: anonymous pull of a public repository", async () => {
  const images = store(dockerConfig("none", {}));
  const rec = await images.pull(`${tokenReg.host}/public/app:1`);
  assert.equal(fs.readFileSync(join(images.resolve(rec.digest).layerDirs[0]!, "hello"), "utf8"), "private");
  const req = tokenReg.token!.requests.at(-1)!;
  assert.equal(req.user, undefined);
  assert.deepEqual(req.scope, ["repository:public/app:pull"]);
});

test("bearer token flow: a private repository needs credentials from ~/.docker/config.json", async () => {
  await assert.rejects(
    store(dockerConfig("none2", {})).pull(`${tokenReg.host}/private/app:1`),
    /denied|UNAUTHORIZED/,
  );
  const creds = dockerConfig("alice", { [tokenReg.host]: { auth: b64(`${USER}:${PASSWORD}`) } });
  const images = store(creds);
  const rec = await images.pull(`${tokenReg.host}/private/app:1`);
  assert.equal(rec.names[0], `${tokenReg.host}/private/app:1`);
  assert.equal(tokenReg.token!.requests.at(-1)!.user, USER);
  const wrong = dockerConfig("mallory", {
    [`https://${tokenReg.host}`]: { username: USER, password: "nope" },
  });
  await assert.rejects(
    store(wrong).pull(`${tokenReg.host}/private/app:1`),
    /authentication to .* failed: the token server answered 401/,
  );
});

test("basic auth from ~/.docker/config.json", async () => {
  await assert.rejects(store(dockerConfig("none3", {})).pull(`${basicReg.host}/team/app:1`), /denied|log in/);
  const images = store(dockerConfig("basic", { [basicReg.host]: { auth: b64(`${USER}:${PASSWORD}`) } }));
  const rec = await images.pull(`${basicReg.host}/team/app:1`);
  assert.ok(images.resolve(rec.digest).layerDirs.length === 1);
});

test("credentials are found under Docker's key spellings", () => {
  const c = dockerConfig("keys", {
    "https://index.docker.io/v1/": { auth: b64("hub:pw") },
    "https://ghcr.io": { username: "gh", password: "tok" },
    "quay.io": { identitytoken: "refresh" },
  });
  assert.deepEqual(c.get("docker.io"), { username: "hub", password: "pw" });
  assert.deepEqual(c.get("ghcr.io"), { username: "gh", password: "tok" });
  assert.deepEqual(c.get("quay.io"), { identityToken: "refresh", username: undefined });
  assert.equal(c.get("example.com"), undefined);
});
