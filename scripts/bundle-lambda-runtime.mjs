// Bundles scar's Lambda runtime (src/lambda/bootstrap.ts and everything it imports: the supervisor,
// the AWS SDK, yaml, undici) into one ES module, dist/lambda/bootstrap.mjs, with esbuild. The function
// image carries that one file under /opt/scar (src/lambda/image/runtime-layer.ts), so it needs no
// node_modules in the image. Run by `npm run build` after tsc.
//
//   node scripts/bundle-lambda-runtime.mjs
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outfile = join(root, "dist/lambda/bootstrap.mjs");
mkdirSync(dirname(outfile), { recursive: true });
const result = await build({
  entryPoints: [join(root, "src/lambda/bootstrap.ts")],
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  minify: true,
  // the SDK and others still call require() for Node's own modules: give the ES module one
  banner: {
    js: "import{createRequire as __scarRequire}from'node:module';const require=__scarRequire(import.meta.url);",
  },
  outfile,
  logLevel: "warning",
  // no timestamps or absolute paths in the output: the same sources give the same bytes (and layer digest)
  legalComments: "none",
});
if (result.errors.length > 0) process.exit(1);
