/**
 * Base images for the function image tests, built from this machine's own files (no registry):
 * - glibc + ImageMagick: dash as /bin/sh, ImageMagick 6's convert with its PNG coder, config and
 *   policy, every library they load (their `ldd` closure) and an ld.so.cache (Debian's
 *   imagemagick-6.q16, scripts/install-deps.sh);
 * - musl: musl's loader as the only libc, a program built with musl-gcc (Debian's musl-tools), and a
 *   static busybox as /bin/sh (Alpine's busybox is musl's; any sh will do for the script);
 * - scratch: a static busybox alone.
 */
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { sharedLibraries } from "../../src/lambda/image/runtime-layer.js";

export const MAGICK_CONVERT = "/usr/bin/convert-im6.q16";
const MAGICK_LIB = "/usr/lib/x86_64-linux-gnu/ImageMagick-6.9.11";
export const MUSL_LOADER = "/lib/ld-musl-x86_64.so.1";

/** Copies a host file into the root file system at the same path (its target when it is a link). */
function copyIn(root: string, path: string, mode?: number): void {
  const dest = join(root, path);
  mkdirSync(dirname(dest), { recursive: true });
  if (existsSync(dest)) return;
  copyFileSync(realpathSync(path), dest);
  if (mode !== undefined) chmodSync(dest, mode);
}

function copyWithLibraries(root: string, path: string, mode = 0o755): void {
  copyIn(root, path, mode);
  const { libs, loader } = sharedLibraries(path);
  for (const l of libs) copyIn(root, l.path, 0o755);
  if (loader) copyIn(root, loader, 0o755);
}

export function hasImageMagick(): boolean {
  return existsSync(MAGICK_CONVERT) && existsSync(`${MAGICK_LIB}/modules-Q16/coders/png.so`);
}

export function hasMusl(): boolean {
  return existsSync(MUSL_LOADER) && existsSync("/usr/bin/musl-gcc");
}

function skeleton(root: string): void {
  for (const d of ["bin", "etc", "proc", "sys", "dev", "tmp"]) mkdirSync(join(root, d), { recursive: true });
  chmodSync(join(root, "tmp"), 0o1777);
  writeFileSync(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  writeFileSync(join(root, "etc/group"), "root:x:0:\n");
}

/** A Debian-like root file system with ImageMagick's `convert` (PNG) and dash as /bin/sh. */
export function imageMagickRootfs(root: string): void {
  skeleton(root);
  copyWithLibraries(root, "/bin/dash");
  symlinkSync("dash", join(root, "bin/sh"));
  copyWithLibraries(root, MAGICK_CONVERT);
  mkdirSync(join(root, "usr/bin"), { recursive: true });
  symlinkSync("convert-im6.q16", join(root, "usr/bin/convert"));
  for (const f of ["png.so", "png.la"]) copyIn(root, `${MAGICK_LIB}/modules-Q16/coders/${f}`, 0o644);
  copyWithLibraries(root, `${MAGICK_LIB}/modules-Q16/coders/png.so`, 0o644);
  execFileSync("cp", ["-a", `${MAGICK_LIB}/config-Q16`, join(root, MAGICK_LIB)]);
  execFileSync("cp", ["-a", "/etc/ImageMagick-6", join(root, "etc")]);
  for (const f of ["/usr/bin/basename"]) copyWithLibraries(root, f);
  // the loader finds /usr/lib/x86_64-linux-gnu through ld.so.conf, as on Debian
  execFileSync("cp", ["-a", "/etc/ld.so.conf", "/etc/ld.so.conf.d", join(root, "etc")]);
  execFileSync("ldconfig", ["-r", root]);
}

/** A musl root file system: musl's loader, one musl program (`upcase`), a static busybox as sh. */
export function muslRootfs(root: string, work: string): void {
  skeleton(root);
  mkdirSync(join(root, "lib"), { recursive: true });
  copyFileSync(MUSL_LOADER, join(root, "lib/ld-musl-x86_64.so.1"));
  chmodSync(join(root, "lib/ld-musl-x86_64.so.1"), 0o755);
  const src = join(work, "upcase.c");
  writeFileSync(
    src,
    '#include <stdio.h>\n#include <ctype.h>\nint main(void){int c;while((c=getchar())!=EOF)putchar(toupper(c));printf("[musl]\\n");return 0;}\n',
  );
  mkdirSync(join(root, "usr/bin"), { recursive: true });
  execFileSync("musl-gcc", ["-O2", "-o", join(root, "usr/bin/upcase"), src]);
  busybox(root, ["sh", "cat", "basename", "echo"]);
}

/** scratch + a static busybox (its applets as links). */
export function scratchBusyboxRootfs(root: string): void {
  mkdirSync(join(root, "bin"), { recursive: true });
  busybox(root, ["sh", "cat", "basename", "echo", "tr", "wc", "rev", "head", "sleep"]);
}

function busybox(root: string, applets: string[]): void {
  const bb = ["/bin/busybox", "/usr/bin/busybox"].find((p) => existsSync(p));
  if (!bb) throw new Error("busybox-static is not installed (scripts/install-deps.sh)");
  mkdirSync(join(root, "bin"), { recursive: true });
  copyFileSync(bb, join(root, "bin/busybox"));
  chmodSync(join(root, "bin/busybox"), 0o755);
  for (const a of applets) symlinkSync("busybox", join(root, "bin", a));
}
