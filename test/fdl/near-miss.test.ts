/** The "did you mean" helper: Damerau-Levenshtein distance and the near misses it allows. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { editDistance, nearMiss } from "../../src/fdl/near-miss.js";

test("editDistance counts insertions, deletions, substitutions and neighbour swaps as one edit each", () => {
  assert.equal(editDistance("memory", "memory"), 0);
  assert.equal(editDistance("memmory", "memory"), 1); // insertion
  assert.equal(editDistance("init_scrpt", "init_script"), 1); // deletion
  assert.equal(editDistance("memorx", "memory"), 1); // substitution
  assert.equal(editDistance("memroy", "memory"), 1); // swap (plain Levenshtein says 2)
  assert.equal(editDistance("tiemout", "timeout"), 1);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("abc", ""), 3);
  assert.equal(editDistance("kitten", "sitting"), 3);
});

test("nearMiss names the closest known key within 2 edits, fewer for short keys", () => {
  const known = [
    "name",
    "memory",
    "timeout",
    "init_script",
    "run_script",
    "input",
    "output",
    "vo",
    "id",
    "cpu",
  ];
  assert.equal(nearMiss("memmory", known), "memory");
  assert.equal(nearMiss("init_scrpt", known), "init_script");
  assert.equal(nearMiss("inti_sript", known), "init_script");
  assert.equal(nearMiss("outputs", known), "output");
  assert.equal(nearMiss("Memory", known), "memory");
  assert.equal(nearMiss("cpus", known), "cpu");
  // Not near misses: too far, or too short to tell a typo from another word.
  assert.equal(nearMiss("memoryyyy", known), undefined);
  assert.equal(nearMiss("io", known), undefined);
  assert.equal(nearMiss("ab", known), undefined);
  assert.equal(nearMiss("gpu", known), undefined);
  assert.equal(nearMiss("new_oscar_feature", known), undefined);
  // A known key is not a near miss of itself.
  assert.equal(nearMiss("memory", known), undefined);
});
