import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { CappedOutput } from "../../src/supervisor/capped-output.js";
import {
  collectOutputFiles,
  HostExecutor,
  keepOutputFiles,
  outputKey,
  outputMatches,
} from "../../src/supervisor/index.js";

const any = { prefix: [] as string[], suffix: [] as string[] };

test("prefix and suffix lists are alternatives; both must match when both are given", () => {
  assert.equal(outputMatches("a.png", any), true);
  assert.equal(outputMatches("a.png", { prefix: [], suffix: ["jpg", "png"] }), true);
  assert.equal(outputMatches("a.wav", { prefix: [], suffix: ["jpg", "png"] }), false);
  assert.equal(outputMatches("result-1.txt", { prefix: ["result-"], suffix: ["txt", "jpg"] }), true);
  assert.equal(outputMatches("result-1.png", { prefix: ["result-"], suffix: ["txt", "jpg"] }), false);
  assert.equal(outputMatches("other-1.txt", { prefix: ["result-"], suffix: ["txt"] }), false);
  // The prefix is matched against the path relative to the output folder.
  assert.equal(outputMatches("video1/img1.jpg", { prefix: ["img"], suffix: [] }), false);
  assert.equal(outputMatches("video1/img1.jpg", { prefix: ["video1/"], suffix: [] }), true);
});

test("keys: <folder>/<relative path>, or the relative path for a bucket-level output", () => {
  assert.equal(outputKey({ folder: "output" }, "dog.png"), "output/dog.png");
  assert.equal(outputKey({ folder: "a/b" }, "video1/img1.jpg"), "a/b/video1/img1.jpg");
  assert.equal(outputKey({ folder: "" }, "x.txt"), "x.txt");
  assert.equal(outputKey({ folder: "out" }, "we\nird.txt"), "out/weird.txt");
});

test("collected files: regular files in name order, sub-folders kept, links skipped and reported", async () => {
  const d = mkdtempSync(join(tmpdir(), "scar-out-"));
  try {
    mkdirSync(join(d, "sub", "deeper"), { recursive: true });
    writeFileSync(join(d, "b.txt"), "b");
    writeFileSync(join(d, "a.txt"), "aa");
    writeFileSync(join(d, "sub", "deeper", "c.txt"), "ccc");
    symlinkSync("/etc/passwd", join(d, "leak"));
    const { files, skipped } = await collectOutputFiles(d);
    assert.deepEqual(
      files.map((f) => [f.rel, f.size]),
      [
        ["a.txt", 2],
        ["b.txt", 1],
        ["sub/deeper/c.txt", 3],
      ],
    );
    assert.deepEqual(skipped, ["leak"]);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test("kept output files: their bytes up to the cap, links skipped; over it, none read, count and size said", async () => {
  const d = mkdtempSync(join(tmpdir(), "scar-keep-"));
  try {
    mkdirSync(join(d, "sub"));
    writeFileSync(join(d, "a.bin"), Buffer.from([0, 255, 10, 13]));
    writeFileSync(join(d, "sub", "b.txt"), "bb");
    symlinkSync("/etc/passwd", join(d, "leak"));
    const k = await keepOutputFiles(d, 6);
    assert.equal(k.kind, "files");
    assert.deepEqual(k.kind === "files" ? k.files.map((f) => [f.rel, [...f.data]]) : [], [
      ["a.bin", [0, 255, 10, 13]],
      ["sub/b.txt", [98, 98]],
    ]);
    assert.deepEqual(await keepOutputFiles(d, 5), { kind: "too-large", count: 2, bytes: 6, maxBytes: 5 });
    assert.deepEqual(await keepOutputFiles(join(d, "sub", "..", "sub"), 0), {
      kind: "too-large",
      count: 1,
      bytes: 2,
      maxBytes: 0,
    });
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test("output beyond the cap keeps its start and its end, with a marker saying how much was dropped", () => {
  const live: Buffer[] = [];
  const out = new CappedOutput(10, (b) => live.push(b));
  out.push(Buffer.from("12345678"));
  out.push(Buffer.from("abcdef"));
  out.push(Buffer.from("xyz"));
  // a quarter of the cap for the start, the rest for the end (no line ends here: cut inside)
  assert.equal(out.result().toString(), "12\n[scar: output truncated, 7 bytes omitted]\nbcdefxyz");
  assert.equal(Buffer.concat(live).toString(), "12345678abcdefxyz");
  const small = new CappedOutput(10);
  small.push(Buffer.from("fits"));
  assert.equal(small.result().toString(), "fits");
  // with lines, the cuts fall on line ends: the marker sits between whole lines
  const lines = new CappedOutput(40);
  for (const l of ["start\n", "one more line\n", "x".repeat(30), "\n", "2nd\n", "ERROR: the end\n"])
    lines.push(Buffer.from(l));
  assert.equal(
    lines.result().toString(),
    "start\n[scar: output truncated, 45 bytes omitted]\n2nd\nERROR: the end\n",
  );
});

test("the host executor keeps the start and the end of a script's output past its cap", async () => {
  const d = mkdtempSync(join(tmpdir(), "scar-cap-"));
  try {
    const ws = { hostInput: d, hostOutput: d, input: d, output: d };
    writeFileSync(
      join(d, "s.sh"),
      'echo "starting"\ni=0; while [ $i -lt 500 ]; do echo "line $i"; i=$((i+1)); done\necho "ERROR: it failed at the end" >&2\nexit 3\n',
    );
    const r = await new HostExecutor({ maxOutputBytes: 1000 }).run({
      requestId: "r",
      command: { kind: "script", hostPath: join(d, "s.sh"), path: join(d, "s.sh") },
      env: {},
      workspace: ws,
      timeoutMs: null,
    });
    assert.equal(r.exitCode, 3);
    const text = r.output.toString();
    const m =
      /^(starting\n(?:line \d+\n)*)\[scar: output truncated, (\d+) bytes omitted\]\n((?:line \d+\n)+)ERROR: it failed at the end\n$/.exec(
        text,
      );
    assert.ok(m, text);
    const full = 9 + Array.from({ length: 500 }, (_, i) => `line ${i}\n`).join("").length + 28;
    assert.equal(m[1]!.length + Number(m[2]) + m[3]!.length + 28, full, "kept + omitted = all of it");
    assert.ok(m[1]!.length + m[3]!.length + 28 <= 1000, "within the cap");
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
