/** The supervisor's log lines, in faas-supervisor's format, collected for the job's log. */

export type Level = "DEBUG" | "INFO" | "WARNING" | "ERROR";
const ORDER: Record<Level, number> = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40 };

export class SupervisorLog {
  readonly lines: string[] = [];

  constructor(
    private readonly level: string = "INFO",
    private readonly sink?: (line: string) => void,
  ) {}

  debug(msg: string): void {
    this.write("DEBUG", msg);
  }
  info(msg: string): void {
    this.write("INFO", msg);
  }
  warning(msg: string): void {
    this.write("WARNING", msg);
  }
  error(msg: string): void {
    this.write("ERROR", msg);
  }

  /**
   * A message of the supervisor's own written on several lines, as faas-supervisor's logging writes
   * it (SCAR's "Job delegated to batch." notice and the command that follows it). Only for text
   * the supervisor composes: each line is still escaped alone, only the message's own breaks stay.
   */
  infoLines(msg: string): void {
    this.write("INFO", msg, true);
  }

  private write(level: Level, msg: string, keepBreaks = false): void {
    const min = ORDER[this.level as Level] ?? (this.level === "CRITICAL" ? 50 : ORDER.INFO);
    if (ORDER[level] < min) return;
    // One record, one line: a message quoting an object key or a body cannot forge the next line.
    const text = keepBreaks ? msg.split("\n").map(oneLine).join("\n") : oneLine(msg);
    const line = `${timestamp(new Date())} - supervisor - ${level} - ${text}`;
    this.lines.push(line);
    this.sink?.(line);
  }
}

/**
 * Control characters and Unicode line breaks written as escapes (`\n`, `\r`, `\x1b`, `\u2028`), so
 * that text from outside (object keys, event bodies, file names) stays inside its log line. Tabs stay.
 */
export function oneLine(text: string): string {
  return text.replace(/[\u0000-\u0008\u000a-\u001f\u007f\u0085\u2028\u2029]/g, (c) => {
    if (c === "\n") return "\\n";
    if (c === "\r") return "\\r";
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`;
  });
}

/** `2026-11-22 02:40:00,123`, Python logging's asctime. */
function timestamp(d: Date): string {
  const iso = d.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)},${iso.slice(20, 23)}`;
}
