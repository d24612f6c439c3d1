/**
 * A script's stdout and stderr interleaved in arrival order (as a terminal shows them), kept up to a
 * cap; every chunk still reaches `onOutput` for live logs. Past the cap it keeps the start (how the
 * run began) and the end (where the error usually is) and drops the middle, with a marker line saying
 * how much, as the job log does (engine/jobs/logs.ts): a quarter of the cap for the start, the rest
 * for the end, cut on line ends where it can so that the marker sits between whole lines.
 */
export class CappedOutput {
  private readonly headMax: number;
  private readonly tailMax: number;
  private readonly head: Buffer[] = [];
  private headBytes = 0;
  /** the start is complete: everything after it goes to the end */
  private headClosed = false;
  private readonly tail: Buffer[] = [];
  private tailBytes = 0;
  private dropped = 0;
  /** the last byte dropped from the front of the end (a line end: the end begins a line) */
  private lastDropped = 0x0a;

  constructor(
    max: number,
    private readonly onOutput?: (chunk: Buffer) => void,
  ) {
    this.headMax = Math.floor(max / 4);
    this.tailMax = max - this.headMax;
  }

  readonly push = (chunk: Buffer): void => {
    this.onOutput?.(chunk);
    if (!this.headClosed) {
      const room = this.headMax - this.headBytes;
      if (chunk.length <= room) {
        this.keepHead(chunk);
        return;
      }
      // The start is full: it ends after its last complete line (a line longer than all of the
      // start is cut inside), and takes nothing more.
      let part = chunk.subarray(0, room);
      const nl = part.lastIndexOf(0x0a);
      if (nl >= 0) part = part.subarray(0, nl + 1);
      else if (this.headBytes > 0) part = part.subarray(0, 0);
      this.keepHead(part);
      this.headClosed = true;
      chunk = chunk.subarray(part.length);
    }
    this.tail.push(chunk);
    this.tailBytes += chunk.length;
    for (let excess = this.tailBytes - this.tailMax; excess > 0; ) {
      const oldest = this.tail[0]!;
      const cut = Math.min(excess, oldest.length);
      this.lastDropped = oldest[cut - 1]!;
      if (cut === oldest.length) this.tail.shift();
      else this.tail[0] = oldest.subarray(cut);
      excess -= cut;
      this.tailBytes -= cut;
      this.dropped += cut;
    }
  };

  private keepHead(part: Buffer): void {
    if (part.length === 0) return;
    this.head.push(part);
    this.headBytes += part.length;
  }

  result(): Buffer {
    if (this.dropped === 0) return Buffer.concat([...this.head, ...this.tail]);
    let end = Buffer.concat(this.tail, this.tailBytes);
    let dropped = this.dropped;
    if (this.lastDropped !== 0x0a) {
      // the end begins with a whole line, unless it is one line (then it is cut inside)
      const nl = end.indexOf(0x0a);
      if (nl >= 0 && nl + 1 < end.length) {
        end = end.subarray(nl + 1);
        dropped += nl + 1;
      }
    }
    const start = Buffer.concat(this.head, this.headBytes);
    const nl = start.length > 0 && start[start.length - 1] !== 0x0a ? "\n" : "";
    return Buffer.concat([start, Buffer.from(`${nl}${truncationMarker(dropped)}\n`), end]);
  }
}

/** The marker line put where the middle of the output was dropped. */
export function truncationMarker(dropped: number): string {
  return `[scar: output truncated, ${dropped} bytes omitted]`;
}
