// Builds the web dashboard (ui/: Preact, TypeScript) into dist/ui, which `scar serve` serves at /ui/
// (src/engine/api/ui.ts): esbuild bundles ui/main.tsx and everything it imports into one script,
// app.js, beside index.html and app.css. Prints the gzipped size and fails past the budget (issue 19:
// 300 KB gzipped). Run by `npm run build` after tsc (which type-checks ui/ with ui/tsconfig.json).
//
//   node scripts/build-ui.mjs
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const BUDGET = 300 * 1024;
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist/ui");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const result = await build({
  entryPoints: [join(root, "ui/main.tsx")],
  bundle: true,
  platform: "browser",
  target: ["chrome109", "firefox115", "safari16"],
  format: "iife",
  jsx: "automatic",
  jsxImportSource: "preact",
  minify: true,
  legalComments: "none",
  outfile: join(out, "app.js"),
  logLevel: "warning",
});
if (result.errors.length > 0) process.exit(1);
copyFileSync(join(root, "ui/index.html"), join(out, "index.html"));
// one stylesheet: uPlot's (its charts' legend and cursor) and the dashboard's
writeFileSync(
  join(out, "app.css"),
  `${readFileSync(join(root, "node_modules/uplot/dist/uPlot.min.css"), "utf8")}\n${readFileSync(join(root, "ui/app.css"), "utf8")}`,
);
let raw = 0;
let gz = 0;
for (const f of ["index.html", "app.css", "app.js"]) {
  const bytes = readFileSync(join(out, f));
  raw += bytes.length;
  gz += gzipSync(bytes, { level: 9 }).length;
}
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
console.log(`dashboard: dist/ui ${kb(raw)}, ${kb(gz)} gzipped (budget ${kb(BUDGET)})`);
if (gz > BUDGET) {
  console.error(`the dashboard's bundle is over its budget: ${kb(gz)} gzipped > ${kb(BUDGET)}`);
  process.exit(1);
}
