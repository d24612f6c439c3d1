// Check values from the CRC catalogue and the SHA/MD5 standards, for the input "123456789".
import assert from "node:assert/strict";
import { test } from "node:test";
import { newDigest } from "../../../src/engine/store/checksums.js";

test("checksums match their published check values, also when fed in pieces", () => {
  const input = Buffer.from("123456789");
  const want: Record<string, string> = {
    crc32: "cbf43926",
    crc32c: "e3069283",
    crc64nvme: "ae8b14860a799888",
    sha1: "f7c3bc1d808e04732adf679965ccc34ca7ae3441",
    sha256: "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225",
    md5: "25f9e794323b453885f5181f1b624d0b",
  };
  for (const [alg, hex] of Object.entries(want)) {
    const whole = newDigest(alg as "md5");
    whole.update(input);
    assert.equal(whole.digest().toString("hex"), hex, alg);
    const pieces = newDigest(alg as "md5");
    for (const part of [input.subarray(0, 2), input.subarray(2, 7), input.subarray(7)]) pieces.update(part);
    assert.equal(pieces.digest().toString("hex"), hex, `${alg} in pieces`);
  }
});
