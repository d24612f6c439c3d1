/**
 * Problems found in an FDL or scar.cfg file, each pinned to a file, line and column so a person can
 * go straight to it. Errors stop a deployment; warnings are printed and the work goes on.
 */

export type KeyPath = (string | number)[];

export interface FdlIssue {
  severity: "error" | "warning";
  file: string;
  /** 1-based; 0 when the problem is not tied to a place in the file (e.g. the file is missing). */
  line: number;
  /** 1-based; 0 when unknown. */
  column: number;
  /** The key path in the file, dotted with [index] for lists: `functions.aws[0].lambda.memory`. */
  path: string;
  message: string;
}

export class FdlError extends Error {
  constructor(readonly issues: FdlIssue[]) {
    super(issues.map(formatIssue).join("\n"));
    this.name = "FdlError";
  }
}

export function formatPath(path: KeyPath): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += out === "" ? seg : `.${seg}`;
  }
  return out;
}

/** `file:line:col: error: path: message`, the shape compilers use, so editors can jump to it. */
export function formatIssue(i: FdlIssue): string {
  const where = i.line > 0 ? `${i.file}:${i.line}:${i.column}` : i.file;
  const path = i.path ? `${i.path}: ` : "";
  return `${where}: ${i.severity}: ${path}${i.message}`;
}
