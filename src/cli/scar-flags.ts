/**
 * SCAR's flag spellings on top of commander. SCAR (argparse) has multi-letter short flags (`-db`,
 * `-ls`, `-ri`, `-es` ...) and its older versions used snake_case long flags (`--conf_file`) and a
 * few other names (`--time`, `--async`). Commander allows one letter after a single dash, so those
 * options are declared with a double-dash alias (`--db, --data-binary`), and this rewrites the
 * command line before parsing: `-db` -> `--db`, `--conf_file` -> `--conf-file`. The help shows them
 * as SCAR users type them.
 */
import { type Command, Help, type Option } from "commander";

/** Long names of SCAR's earlier versions that are not a snake_case spelling of today's. */
const RENAMED: Record<string, string> = {
  "--time": "--timeout",
  "--async": "--asynchronous",
  "--time-threshold": "--timeout-threshold",
  "--lambda-role": "--iam-role",
};

function findOption(cmd: Command, flag: string): Option | undefined {
  return cmd.options.find((o) => o.short === flag || o.long === flag);
}

/** Rewrites the arguments of the command line (without `node scar`) into commander's spelling. */
export function rewriteScarFlags(program: Command, argv: string[]): string[] {
  const out = [...argv];
  const at = out.findIndex((a) => !a.startsWith("-"));
  if (at < 0) return out;
  const cmd = program.commands.find((c) => c.name() === out[at] || c.aliases().includes(out[at]!));
  if (!cmd) return out;
  // Commands that pass everything after their first operand through (scar run NAME ARGS...).
  const passThrough = (cmd as unknown as { _passThroughOptions?: boolean })._passThroughOptions === true;
  for (let i = at + 1; i < out.length; i++) {
    const arg = out[i]!;
    if (arg === "--") break;
    if (!arg.startsWith("-") || arg === "-") {
      if (passThrough) break;
      continue;
    }
    const [flag, value] = splitValue(arg);
    const spelled = spelling(cmd, flag);
    if (spelled !== flag) out[i] = value === undefined ? spelled : `${spelled}=${value}`;
    const opt = findOption(cmd, spelled);
    if (opt && (opt.required || opt.optional) && value === undefined) i++; // skip the option's value
  }
  return out;
}

function splitValue(arg: string): [string, string | undefined] {
  if (!arg.startsWith("--")) return [arg, undefined];
  const eq = arg.indexOf("=");
  return eq < 0 ? [arg, undefined] : [arg.slice(0, eq), arg.slice(eq + 1)];
}

function spelling(cmd: Command, flag: string): string {
  if (findOption(cmd, flag)) return flag;
  // -db -> --db (a SCAR multi-letter short flag declared as a double-dash alias)
  if (/^-[a-z]{2,4}$/.test(flag) && findOption(cmd, `-${flag}`)) return `-${flag}`;
  if (flag.startsWith("--")) {
    const kebab = flag.replace(/_/g, "-");
    const renamed = RENAMED[kebab] ?? kebab;
    if (findOption(cmd, renamed)) return renamed;
  }
  return flag;
}

const baseOptionTerm = Help.prototype.optionTerm;

/** Help shows `-db, --data-binary` as SCAR documents it, not commander's `--db, --data-binary`. */
export function scarOptionTerm(this: Help, option: Option): string {
  const term = baseOptionTerm.call(this, option);
  return option.short?.startsWith("--") ? term.replace(/^--/, "-") : term;
}
