/** The supervisor's log lines: text from outside stays on its line; its own notices keep their breaks. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { SupervisorLog } from "../../src/supervisor/log.js";

test("info escapes line breaks; infoLines keeps the message's own and escapes the rest", () => {
  const written: string[] = [];
  const log = new SupervisorLog("INFO", (l) => written.push(l));
  log.info("Downloading 'a\nforged - supervisor - INFO - line'");
  log.infoLines("Job delegated to batch.\nCheck batch logs with:\n  scar log -n fn -ri j\r\x1b[2J");
  log.debug("below the level");
  assert.equal(written.length, 2);
  assert.match(written[0]!, / - supervisor - INFO - Downloading 'a\\nforged - supervisor - INFO - line'$/);
  assert.equal(written[0]!.split("\n").length, 1);
  assert.match(
    written[1]!,
    / - supervisor - INFO - Job delegated to batch\.\nCheck batch logs with:\n {2}scar log -n fn -ri j\\r\\x1b\[2J$/,
  );
  assert.deepEqual(log.lines, written);
});
