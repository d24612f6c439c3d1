/**
 * The CLI's transfers next to the AWS CLI's, against the same local engine's store in the same run:
 * `scar put` / `scar get` of 1,000 small files and of one 256 MiB file vs `aws s3 cp --recursive`,
 * and the start-up cost of one `scar ls` vs `aws s3 ls`. Prints seconds and ratios; no assertions.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const bin = new URL("../../bin/scar", import.meta.url).pathname;
const AWS = "/usr/bin/aws";
const root = mkdtempSync(join(tmpdir(), "scar-bench-cli-"));
const cfg = join(root, "cfg");
const data = join(root, "data");
mkdirSync(cfg);
writeFileSync(
  join(cfg, "scar.cfg"),
  JSON.stringify({ scar: { config_version: "2.0.0" }, local: { data_dir: data, port: 0, s3_port: 0 } }),
);
const env = { ...process.env, SCAR_CONFIG_FOLDER: cfg };

function scar(args: string[]): void {
  const r = spawnSync(bin, args, { env, encoding: "utf8", maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`scar ${args.join(" ")}: ${r.stderr}`);
}

function time(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

try {
  scar(["engine", "start"]);
  const info = JSON.parse(readFileSync(join(data, "engine.json"), "utf8"));
  const creds = JSON.parse(readFileSync(join(data, "credentials"), "utf8"));
  const awsEnv = {
    ...process.env,
    AWS_ACCESS_KEY_ID: creds.s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: creds.s3.secretAccessKey,
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_CONFIG_FILE: "/dev/null",
  };
  const aws = (args: string[]) =>
    execFileSync(AWS, ["--endpoint-url", info.s3, ...args], {
      env: awsEnv,
      stdio: ["ignore", "ignore", "pipe"],
    });
  const haveAws = existsSync(AWS);

  const small = join(root, "small");
  mkdirSync(small);
  const body = Buffer.alloc(4096, 7);
  for (let i = 0; i < 1000; i++) writeFileSync(join(small, `f${String(i).padStart(4, "0")}.bin`), body);
  const big = join(root, "big");
  mkdirSync(big);
  const chunk = Buffer.alloc(1 << 20);
  const fd = join(big, "big.bin");
  writeFileSync(fd, "");
  for (let i = 0; i < 256; i++) writeFileSync(fd, chunk.fill(i & 0xff), { flag: "a" });

  const rows: [string, number, number | null][] = [];
  const put1 = time(() => scar(["put", "-b", "bench/scar-small", "-p", small]));
  const put2 = haveAws
    ? time(() => aws(["s3", "cp", "--recursive", "--only-show-errors", small, "s3://bench/aws-small/"]))
    : null;
  rows.push(["put 1,000 x 4 KiB", put1, put2]);
  const get1 = time(() => scar(["get", "-b", "bench/scar-small", "-p", join(root, "got-scar")]));
  const get2 = haveAws
    ? time(() =>
        aws([
          "s3",
          "cp",
          "--recursive",
          "--only-show-errors",
          "s3://bench/aws-small/",
          join(root, "got-aws"),
        ]),
      )
    : null;
  rows.push(["get 1,000 x 4 KiB", get1, get2]);
  const bput1 = time(() => scar(["put", "-b", "bench/scar-big", "-p", fd]));
  const bput2 = haveAws
    ? time(() => aws(["s3", "cp", "--only-show-errors", fd, "s3://bench/aws-big/big.bin"]))
    : null;
  rows.push(["put 1 x 256 MiB", bput1, bput2]);
  const bget1 = time(() => scar(["get", "-b", "bench/scar-big", "-p", join(root, "big-scar")]));
  const bget2 = haveAws
    ? time(() =>
        aws(["s3", "cp", "--only-show-errors", "s3://bench/aws-big/big.bin", join(root, "big-aws.bin")]),
      )
    : null;
  rows.push(["get 1 x 256 MiB", bget1, bget2]);
  const ls1 = Math.min(...[0, 1, 2].map(() => time(() => scar(["ls"]))));
  const ls2 = haveAws ? Math.min(...[0, 1, 2].map(() => time(() => aws(["s3", "ls"])))) : null;
  rows.push(["one command (scar ls / aws s3 ls), best of 3", ls1, ls2]);

  console.log(
    `cli: scar vs ${haveAws ? "aws-cli v2" : "(no /usr/bin/aws)"} against the same local store, seconds`,
  );
  for (const [what, s, a] of rows) {
    const ratio = a === null ? "" : `  scar/aws ${(s / a).toFixed(2)}x`;
    console.log(`  ${what.padEnd(46)} scar ${s.toFixed(2)}  aws ${a === null ? "-" : a.toFixed(2)}${ratio}`);
  }
  console.log("  (lower is better; a ratio below 1 means scar was faster)");
} finally {
  spawnSync(bin, ["engine", "stop"], { env });
  rmSync(root, { recursive: true, force: true });
}
