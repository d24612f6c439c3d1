/**
 * Keeps the first `limit` bytes of a stream and counts the rest. The container's pipes are always
 * drained (a full pipe would block the container); only what is kept is bounded.
 */
export class CappedBuffer {
  private chunks: Buffer[] = [];
  private kept = 0;
  dropped = 0;

  constructor(readonly limit: number) {}

  push(chunk: Buffer): void {
    const room = this.limit - this.kept;
    if (room >= chunk.length) {
      this.chunks.push(chunk);
      this.kept += chunk.length;
      return;
    }
    if (room > 0) {
      this.chunks.push(chunk.subarray(0, room));
      this.kept += room;
    }
    this.dropped += chunk.length - Math.max(room, 0);
  }

  /** What was kept, followed by a truncation marker line when something was dropped. */
  result(): Buffer {
    const body = Buffer.concat(this.chunks, this.kept);
    if (this.dropped === 0) return body;
    const nl = body.length > 0 && body[body.length - 1] !== 0x0a ? "\n" : "";
    return Buffer.concat([body, Buffer.from(`${nl}${truncationMarker(this.dropped)}\n`)]);
  }
}

export function truncationMarker(dropped: number): string {
  return `[scar: output truncated, ${dropped} more bytes not kept]`;
}
