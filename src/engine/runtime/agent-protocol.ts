/**
 * The frames between the engine and scar's in-container agent (agent/scar-agent.c; the protocol is
 * fixed in WARM.md): 1 byte type, 4 bytes payload length (big-endian), the payload. Payloads are
 * NUL-terminated string fields, except O/E chunks (raw bytes). Pure: no streams, no processes.
 */

/** the largest payload either side accepts; a bigger frame is a protocol error */
export const MAX_PAYLOAD = 4 << 20;
export const HEADER_BYTES = 5;
export const PROTOCOL_VERSION = "1";

/** engine -> agent: R run, K kill. agent -> engine: H hello, S started, O/E output, X exit */
export type AgentFrameType = "H" | "S" | "O" | "E" | "X";
export type EngineFrameType = "R" | "K";

export interface Frame<T extends string = string> {
  type: T;
  payload: Buffer;
}

/** a frame that breaks the protocol; the message says what was wrong */
export class AgentProtocolError extends Error {
  override name = "AgentProtocolError";
}

export function encodeFrame(type: string, payload: Buffer): Buffer {
  if (payload.length > MAX_PAYLOAD)
    throw new AgentProtocolError(`a ${type} frame of ${payload.length} bytes is larger than ${MAX_PAYLOAD}`);
  const head = Buffer.alloc(HEADER_BYTES);
  head.write(type, 0, "latin1");
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

/** a frame of NUL-terminated fields; a field holding a NUL byte cannot be sent (it would end early) */
export function encodeFields(type: string, fields: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) {
    if (f.includes("\0"))
      throw new AgentProtocolError(`a field of a ${type} frame holds a NUL byte: ${JSON.stringify(f)}`);
    parts.push(Buffer.from(f, "utf8"), Buffer.alloc(1));
  }
  return encodeFrame(type, Buffer.concat(parts));
}

/** the fields of a payload, which must be NUL-terminated; `count` when the frame has a fixed number */
export function decodeFields(type: string, payload: Buffer, count?: number): string[] {
  if (payload.length === 0 || payload[payload.length - 1] !== 0)
    throw new AgentProtocolError(`${type} frame: its last field is not NUL-terminated`);
  const fields = payload
    .subarray(0, payload.length - 1)
    .toString("utf8")
    .split("\0");
  if (count !== undefined && fields.length !== count)
    throw new AgentProtocolError(`${type} frame: ${fields.length} fields, expected ${count}`);
  return fields;
}

export interface RunFrame {
  id: string;
  /** 0 or absent: no limit */
  timeoutMs?: number;
  /** absent or empty: the agent's own working folder */
  cwd?: string;
  argv: readonly string[];
  /** the complete environment, `KEY=value` entries */
  env: readonly string[];
}

export function runFrame(r: RunFrame): Buffer {
  const timeout = r.timeoutMs ?? 0;
  if (!Number.isSafeInteger(timeout) || timeout < 0)
    throw new AgentProtocolError(`run ${r.id}: timeoutMs must be a whole number of ms >= 0, not ${timeout}`);
  if (r.argv.length === 0) throw new AgentProtocolError(`run ${r.id}: argv is empty`);
  return encodeFields("R", [
    r.id,
    String(timeout),
    r.cwd ?? "",
    String(r.argv.length),
    ...r.argv,
    String(r.env.length),
    ...r.env,
  ]);
}

export function killFrame(id: string): Buffer {
  return encodeFields("K", [id]);
}

/**
 * Cuts a byte stream into frames, whatever the reads it arrives in (a frame may be split anywhere,
 * down to single bytes). A frame of a type not in `types`, or longer than MAX_PAYLOAD, throws
 * AgentProtocolError as soon as its header is in.
 */
export class FrameDecoder<T extends string> {
  private chunks: Buffer[] = [];
  private length = 0;

  constructor(private readonly types: readonly T[]) {}

  /** bytes received that are not yet a whole frame */
  get pending(): number {
    return this.length;
  }

  push(chunk: Buffer): Frame<T>[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.length += chunk.length;
    }
    const frames: Frame<T>[] = [];
    while (this.length >= HEADER_BYTES) {
      const head = this.first(HEADER_BYTES);
      const type = String.fromCharCode(head[0]!);
      const size = head.readUInt32BE(1);
      if (!(this.types as readonly string[]).includes(type))
        throw new AgentProtocolError(`unknown frame type 0x${head[0]!.toString(16).padStart(2, "0")}`);
      if (size > MAX_PAYLOAD)
        throw new AgentProtocolError(`a ${type} frame of ${size} bytes is larger than ${MAX_PAYLOAD}`);
      if (this.length < HEADER_BYTES + size) break;
      const whole = this.take(HEADER_BYTES + size);
      frames.push({ type: type as T, payload: whole.subarray(HEADER_BYTES) });
    }
    return frames;
  }

  /** the first n buffered bytes (n <= length), joining chunks only when a header spans them */
  private first(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  /** removes and returns the first n bytes (n <= length) */
  private take(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    const head = this.chunks[0]!;
    if (head.length === n) this.chunks.shift();
    else this.chunks[0] = head.subarray(n);
    this.length -= n;
    return head.subarray(0, n);
  }
}
