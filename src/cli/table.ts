/**
 * Formats rows as a plain-text table with a header and a dashed rule, like SCAR's `tabulate` output:
 * numbers are right-aligned, everything else left-aligned.
 */
export function formatTable(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = rows.map((r) => headers.map((_, i) => r[i]));
  const text = (v: unknown) => (v === null || v === undefined || v === "" ? "-" : String(v));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => text(r[i]).length)));
  // A column is right-aligned when every cell that has a value is a number.
  const numeric = headers.map((_, i) => {
    const present = cells.map((r) => r[i]).filter((v) => v !== null && v !== undefined && v !== "");
    return present.length > 0 && present.every((v) => typeof v === "number");
  });
  const pad = (s: string, i: number) => (numeric[i] ? s.padStart(widths[i]!) : s.padEnd(widths[i]!));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => pad(v, i))
      .join("  ")
      .trimEnd();
  return [
    line(headers),
    line(widths.map((w) => "-".repeat(w))),
    ...cells.map((r) => line(r.map((v) => text(v)))),
  ].join("\n");
}
