/**
 * A parsed YAML (or JSON) file that remembers where every key and value came from, so that errors
 * found long after parsing (after merging with scar.cfg, in cross-function checks) can still name
 * the file, line and column.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import { type FdlIssue, formatPath, type KeyPath } from "./issues.js";

export interface Position {
  line: number;
  column: number;
}

export class SourceFile {
  private constructor(
    readonly file: string,
    readonly value: unknown,
    private readonly root: Node | null,
    private readonly lines: LineCounter,
  ) {}

  /**
   * Parses `text`. Syntax errors come back as issues (never thrown), with the position the YAML
   * parser reports. `uniqueKeys` makes a repeated key an error, as a repeated key is nearly always
   * a copy-paste mistake that would silently drop the first value.
   */
  static parse(file: string, text: string): { source: SourceFile; errors: FdlIssue[] } {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
    const errors: FdlIssue[] = doc.errors.map((e) => {
      const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
      return {
        severity: "error",
        file,
        line: pos.line,
        column: pos.col,
        path: "",
        message: `YAML syntax error: ${firstLine(e.message)}`,
      };
    });
    const value = errors.length === 0 ? doc.toJS({ maxAliasCount: 1000 }) : undefined;
    return { source: new SourceFile(file, value, doc.contents as Node | null, lines), errors };
  }

  /** True when the file itself holds a value at `path` (as opposed to a default from elsewhere). */
  has(path: KeyPath): boolean {
    return this.find(path).exact;
  }

  /**
   * Where `path` is written: the value's position when `on` is "value", the key's when "key".
   * For a path the file does not contain, the position of its nearest ancestor that it does.
   */
  position(path: KeyPath, on: "key" | "value" = "value"): Position {
    const found = this.find(path);
    const node = on === "key" && found.exact && found.keyNode ? found.keyNode : found.node;
    const offset = node?.range?.[0] ?? 0;
    const p = this.lines.linePos(offset);
    return { line: p.line, column: p.col };
  }

  issue(
    severity: FdlIssue["severity"],
    path: KeyPath,
    message: string,
    on: "key" | "value" = "value",
  ): FdlIssue {
    const pos = this.position(path, on);
    return { severity, file: this.file, line: pos.line, column: pos.column, path: formatPath(path), message };
  }

  private find(path: KeyPath): { node: Node | null; keyNode: Node | null; exact: boolean } {
    let node: Node | null = this.root;
    let keyNode: Node | null = null;
    for (const seg of path) {
      let next: Node | null = null;
      let nextKey: Node | null = null;
      if (isMap(node)) {
        for (const pair of node.items) {
          if (isPair(pair) && keyText(pair.key) === String(seg)) {
            next = (pair.value as Node | null) ?? (pair.key as Node);
            nextKey = pair.key as Node;
            break;
          }
        }
      } else if (isSeq(node) && typeof seg === "number") {
        next = (node.items[seg] as Node | undefined) ?? null;
        nextKey = next;
      }
      if (!next) return { node, keyNode, exact: false };
      node = next;
      keyNode = nextKey;
    }
    return { node, keyNode, exact: true };
  }
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return undefined;
}

function firstLine(s: string): string {
  return s.split("\n")[0]!.trim();
}
