/** Zod's issues rewritten for a person editing YAML: what is wrong, and what is allowed. */
import type { ZodIssue } from "./schema.js";

const HINTS: Record<string, string> = {
  memory: "a number of MB (e.g. 1024) or an amount such as 1Gi",
  cpu: "a number of cores such as 0.5, or an amount such as 500m",
  suffix: "a text or a list of texts",
  prefix: "a text or a list of texts",
  c_args: "a list of arguments",
};

export function zodIssueMessage(issue: ZodIssue): string {
  const key = String(issue.path[issue.path.length - 1] ?? "");
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case "invalid_type":
      if (input === undefined)
        return issue.message.startsWith("Invalid input") ? "is required" : issue.message;
      return `must be ${article(issue.expected)}, not ${describe(input)}`;
    case "invalid_value":
      return `must be one of ${issue.values.map((v) => String(v)).join(", ")} (got ${describe(input)})`;
    case "invalid_union":
      return `must be ${HINTS[key] ?? "a different kind of value"}, not ${describe(input)}`;
    default:
      return issue.message;
  }
}

function article(expected: string): string {
  const words: Record<string, string> = {
    string: "a text",
    number: "a number",
    boolean: "true or false",
    array: "a list",
    object: "a map (key: value lines)",
    record: "a map (key: value lines)",
  };
  return words[expected] ?? expected;
}

export function describe(v: unknown): string {
  if (v === null) return "an empty value";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a map";
  if (typeof v === "string") return `the text '${v}'`;
  if (typeof v === "number") return `the number ${v}`;
  if (typeof v === "boolean") return String(v);
  return typeof v;
}
