/**
 * Progress on the terminal: one line on stderr, redrawn at most ten times a second. Commands show it
 * only when stderr is a TTY and --json was not asked for; otherwise they stay quiet and print
 * machine-readable results on stdout.
 */

/** Whether a command should draw progress. */
export function showProgress(json: boolean | undefined): boolean {
  return !json && process.stderr.isTTY === true;
}

export function human(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export /** A one-line progress display of byte transfers by part (image layers), for pulls and pushes. */
function progressLine(label: string) {
  const sizes = new Map<string, number>();
  const done = new Map<string, number>();
  let last = 0;
  const render = (force = false) => {
    const now = Date.now();
    if (!force && now - last < 100) return;
    last = now;
    let total = 0;
    let got = 0;
    for (const [d, s] of sizes) {
      total += s;
      got += Math.min(s, done.get(d) ?? 0);
    }
    const pct = total > 0 ? Math.floor((got / total) * 100) : 100;
    process.stderr.write(`\r\x1b[K${label}: ${human(got)} / ${human(total)} (${pct}%)`);
  };
  return {
    size(d: string, s: number) {
      sizes.set(d, s);
    },
    bytes(d: string, b: number) {
      done.set(d, b);
      render();
    },
    finish(msg: string) {
      render(true);
      process.stderr.write(`\r\x1b[K${msg}\n`);
    },
  };
}

/** A live count of a fan-out (jobs, files): done / failed / running of a total. */
export function countLine(label: string, total: number) {
  let last = 0;
  const state = { done: 0, failed: 0, running: 0, bytes: 0 };
  const render = (force = false) => {
    const now = Date.now();
    if (!force && now - last < 100) return;
    last = now;
    const parts = [`${state.done + state.failed}/${total}`];
    if (state.failed > 0) parts.push(`${state.failed} failed`);
    if (state.running > 0) parts.push(`${state.running} running`);
    if (state.bytes > 0) parts.push(human(state.bytes));
    process.stderr.write(`\r\x1b[K${label}: ${parts.join(", ")}`);
  };
  return {
    state,
    update(change: Partial<typeof state>) {
      Object.assign(state, change);
      render();
    },
    add(change: Partial<typeof state>) {
      for (const [k, v] of Object.entries(change)) state[k as keyof typeof state] += v as number;
      render();
    },
    finish(msg?: string) {
      render(true);
      process.stderr.write(msg ? `\r\x1b[K${msg}\n` : "\n");
    },
  };
}
