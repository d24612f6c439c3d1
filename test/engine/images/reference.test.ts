import assert from "node:assert/strict";
import { test } from "node:test";
import {
  familiarName,
  formatReference,
  isLoopbackRegistry,
  parseReference,
} from "../../../src/engine/images/reference.js";

const D = `sha256:${"ab".repeat(32)}`;

test("references are normalised as Docker does", () => {
  const cases: [string, string][] = [
    ["busybox", "docker.io/library/busybox:latest"],
    ["grycap/cowsay", "docker.io/grycap/cowsay:latest"],
    ["grycap/cowsay:1.0", "docker.io/grycap/cowsay:1.0"],
    ["docker.io/ubuntu", "docker.io/library/ubuntu:latest"],
    ["index.docker.io/library/ubuntu:22.04", "docker.io/library/ubuntu:22.04"],
    ["localhost/x", "localhost/x:latest"],
    ["localhost:5000/x", "localhost:5000/x:latest"],
    ["127.0.0.1:5000/lab/bb:1", "127.0.0.1:5000/lab/bb:1"],
    ["[::1]:5000/lab/bb", "[::1]:5000/lab/bb:latest"],
    ["ghcr.io/org/team/app:v1.2.3", "ghcr.io/org/team/app:v1.2.3"],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`],
    [`busybox:1.36@${D}`, `docker.io/library/busybox:1.36@${D}`],
    ["Registry/x", "Registry/x:latest"],
    ["a__b/c-d.e--f", "docker.io/a__b/c-d.e--f:latest"],
  ];
  for (const [input, want] of cases) assert.equal(formatReference(parseReference(input)), want, input);
});

test("familiar names drop docker.io and library/", () => {
  assert.equal(familiarName(parseReference("docker.io/library/busybox")), "busybox:latest");
  assert.equal(familiarName(parseReference("grycap/cowsay:2")), "grycap/cowsay:2");
  assert.equal(familiarName(parseReference("localhost:5000/x")), "localhost:5000/x:latest");
});

test("parts of a reference", () => {
  const r = parseReference(`localhost:5000/a/b:t@${D}`);
  assert.deepEqual(r, { registry: "localhost:5000", repository: "a/b", tag: "t", digest: D });
  assert.deepEqual(parseReference(`x@${D}`), { registry: "docker.io", repository: "library/x", digest: D });
});

test("bad references are refused with a reason", () => {
  const bad: [string, RegExp][] = [
    ["", /empty/],
    ["UPPER", /lower-case/],
    ["docker.io/Library/x", /lower-case/],
    ["x:", /bad tag/],
    ["x:-bad", /bad tag/],
    [`x:${"t".repeat(129)}`, /bad tag/],
    ["x@sha256:abc", /bad digest/],
    [`x@sha256:${"AB".repeat(32)}`, /lower-case hex/],
    ["a/-b", /bad path component/],
    ["a//b", /bad path component/],
    ["host:port/x", /bad registry/],
    [`${"a".repeat(256)}`, /longer than 255/],
    ["x y", /bad path component/],
  ];
  for (const [input, re] of bad) assert.throws(() => parseReference(input), re, input);
});

test("loopback registries are recognised", () => {
  for (const r of [
    "localhost:5000",
    "127.0.0.1:41234",
    "127.1.2.3",
    "[::1]:5000",
    "localhost",
    "reg.localhost:80",
  ])
    assert.ok(isLoopbackRegistry(r), r);
  for (const r of ["docker.io", "10.0.0.1:5000", "ghcr.io", "localhost.example.com"])
    assert.ok(!isLoopbackRegistry(r), r);
});
