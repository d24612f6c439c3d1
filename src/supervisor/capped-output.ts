/**
 * A script's stdout and stderr interleaved in arrival order (as a terminal shows them), kept up to a
 * cap; every chunk still reaches `onOutput` for live logs. Past the cap the rest is counted and a
 * marker says how much was dropped (the runtime's wording, so users see one marker everywhere).
 */
export class CappedOutput {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  private dropped = 0;

  constructor(
    private readonly max: number,
    private readonly onOutput?: (chunk: Buffer) => void,
  ) {}

  readonly push = (chunk: Buffer): void => {
    this.onOutput?.(chunk);
    const part = chunk.subarray(0, Math.max(0, this.max - this.kept));
    if (part.length > 0) {
      this.chunks.push(part);
      this.kept += part.length;
    }
    this.dropped += chunk.length - part.length;
  };

  result(): Buffer {
    const marker =
      this.dropped > 0
        ? [Buffer.from(`\n[scar: output truncated, ${this.dropped} more bytes not kept]\n`)]
        : [];
    return Buffer.concat([...this.chunks, ...marker]);
  }
}
