/**
 * The dashboard's accessibility, for ui-browser.test.ts: an axe-core audit of each main page (login,
 * functions with a function's edit panel open, buckets, a bucket, jobs, a job with its timeline and
 * log, dead letters, engine) that fails on serious or critical violations, and a walk through the
 * pages with the keyboard only: each page reached by Tab and Enter from the navigation, and one of
 * its actions done the same way. A screenshot of each audited page goes into `shots`.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { Browser, Locator, Page } from "playwright-core";

const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

export interface AuditOptions {
  url: string;
  user: string;
  password: string;
  /** A deployed function with an input and an output folder, and jobs that succeeded. */
  fn: string;
  shots: string;
}

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[]; failureSummary?: string }[];
}

/** Runs axe-core on the page as it is; the serious and critical violations, one line each. */
async function audit(page: Page, name: string, shots: string): Promise<string[]> {
  if (!(await page.evaluate("typeof window.axe !== 'undefined'"))) await page.addScriptTag({ path: AXE });
  const violations = (await page.evaluate(
    "axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations)",
  )) as AxeViolation[];
  await page.screenshot({ path: join(shots, `a11y-${name}.png`), fullPage: true });
  // every violation, the moderate and minor ones too, beside the screenshot
  writeFileSync(join(shots, `a11y-${name}.json`), `${JSON.stringify(violations, null, 2)}\n`);
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map(
      (v) =>
        `${name}: ${v.id} (${v.impact}): ${v.help}: ${v.nodes
          .slice(0, 3)
          .map((n) => n.target.join(" "))
          .join(", ")}`,
    );
}

/** Presses Tab until `target` has the focus; fails when it is not reached in `max` presses. */
async function tabTo(page: Page, target: Locator, max = 80): Promise<void> {
  const handle = await target.elementHandle();
  assert.ok(handle, "the element to reach is on the page");
  for (let i = 0; i < max; i++) {
    await page.keyboard.press("Tab");
    // runs in the page (the tests are compiled without the DOM's types)
    const focused = await handle.evaluate(
      (el: unknown) =>
        el === (el as { ownerDocument: { activeElement: unknown } }).ownerDocument.activeElement,
    );
    if (focused) return;
  }
  assert.fail(`Tab did not reach ${target} in ${max} presses`);
}

/** Tab to `target`, Enter. */
export async function activate(page: Page, target: Locator): Promise<void> {
  await tabTo(page, target);
  await page.keyboard.press("Enter");
}

/** From the top of the page, by the navigation's link. */
async function goTo(page: Page, label: string, heading: string | RegExp): Promise<void> {
  await page.locator("body").focus();
  await page.evaluate("window.scrollTo(0, 0)");
  await activate(page, page.getByRole("navigation", { name: "pages" }).getByRole("link", { name: label }));
  await page.getByRole("heading", { level: 1, name: heading }).waitFor();
}

export async function auditDashboard(browser: Browser, o: AuditOptions): Promise<void> {
  // axe-core is injected as a script tag, which the dashboard's Content-Security-Policy (scripts of
  // its own files only) rightly blocks: this context alone bypasses the CSP, so that the audit can
  // run; the main test's context keeps the CSP and checks that the page breaks none of its rules.
  const context = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 800 } });
  const problems: string[] = [];
  try {
    const page = await context.newPage();
    await page.goto(`${o.url}/ui/`);
    await page.getByLabel("Password").waitFor();
    problems.push(...(await audit(page, "login", o.shots)));

    // signed in with the keyboard from the top of the page
    await tabTo(page, page.getByLabel("User"));
    await page.keyboard.press("Control+A");
    await page.keyboard.type(o.user);
    await page.keyboard.press("Tab");
    await page.keyboard.type(o.password);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { level: 1, name: "Functions" }).waitFor();

    // functions: a function's edit panel opened by the keyboard
    // the focus moves into the panel that opens: the next Tab is its first field
    await activate(page, page.getByRole("button", { name: `Edit ${o.fn}` }));
    const edit = page.getByRole("region", { name: `Edit ${o.fn}` });
    await edit.getByLabel("Memory (MiB)").waitFor();
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate("document.activeElement.name"), "memory");
    problems.push(...(await audit(page, "functions", o.shots)));

    // buckets: the function's bucket, its output folder opened
    await goTo(page, "Buckets", "Buckets");
    problems.push(...(await audit(page, "buckets", o.shots)));
    await activate(page, page.getByRole("main").getByRole("link", { name: o.fn, exact: true }));
    await activate(page, page.getByRole("button", { name: `output/ (${o.fn}'s output)` }));
    await page
      .getByRole("button", { name: /^Preview output\// })
      .first()
      .waitFor();
    problems.push(...(await audit(page, "bucket", o.shots)));

    // jobs: one opened from the list, its timeline and log
    await goTo(page, "Jobs", "Jobs");
    await page.locator('.jobscroll li[data-status="succeeded"]').first().waitFor();
    problems.push(...(await audit(page, "jobs", o.shots)));
    await activate(page, page.locator(".jobscroll li a").first());
    await page.getByRole("heading", { name: "Stages" }).waitFor();
    await page.locator("pre.log").filter({ hasText: "END RequestId" }).waitFor();
    problems.push(...(await audit(page, "job", o.shots)));
    // ... and from it, the jobs of its function
    await activate(page, page.getByRole("main").getByRole("link", { name: o.fn, exact: true }));
    await page.getByRole("heading", { level: 1, name: `Jobs of ${o.fn}` }).waitFor();

    await goTo(page, "Dead letters", "Dead letters");
    problems.push(...(await audit(page, "dead-letters", o.shots)));

    // engine: a pull of a reference that is not one, refused with its reason
    await goTo(page, "Engine", "Engine");
    await page.getByRole("img", { name: "Queue depth" }).locator("canvas").waitFor();
    problems.push(...(await audit(page, "engine", o.shots)));
    await tabTo(page, page.getByLabel("Image to pull"));
    await page.keyboard.type("Not A Reference!");
    await page.keyboard.press("Enter");
    await page.getByRole("alert").waitFor();

    // signed out by the keyboard
    await activate(page, page.getByRole("button", { name: "Sign out" }));
    await page.getByLabel("Password").waitFor();
  } finally {
    await context.close();
  }
  assert.deepEqual(problems, [], "serious or critical accessibility violations");
}
