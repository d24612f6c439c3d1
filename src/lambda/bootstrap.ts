#!/usr/bin/env node
/**
 * The function's entry point (the image's CMD): scar's Lambda runtime, serving invocations until
 * Lambda ends the environment. Exits 1 when the Runtime API cannot be reached or refuses the runtime
 * (Lambda then restarts the environment), after printing why.
 */
import { runRuntime } from "./runtime.js";

// The SDK's notice about future Node versions is for scar's maintainers, not the function's logs
// (the SDK reads this when its first client is made, after the imports above).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

runRuntime().catch((err: unknown) => {
  process.stderr.write(`scar runtime: ${(err as Error).message ?? String(err)}\n`);
  process.exitCode = 1;
});
