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

  private write(level: Level, msg: string): void {
    const min = ORDER[this.level as Level] ?? (this.level === "CRITICAL" ? 50 : ORDER.INFO);
    if (ORDER[level] < min) return;
    const line = `${timestamp(new Date())} - supervisor - ${level} - ${msg}`;
    this.lines.push(line);
    this.sink?.(line);
  }
}

/** `2026-11-22 02:40:00,123`, Python logging's asctime. */
function timestamp(d: Date): string {
  const iso = d.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)},${iso.slice(20, 23)}`;
}
