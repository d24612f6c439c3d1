/**
 * The engine's side of scar's in-container agent (agent/scar-agent.c): runs invocations over the
 * agent's stdin (a Writable here) and stdout (a Readable), one at a time.
 *
 *   const agent = await AgentClient.connect(stdin, stdout, { helloTimeoutMs: 10_000 });
 *   const x = await agent.run({ id, argv: ["/bin/sh", "/scar/script.sh"], env, onStdout, onStderr });
 *   // x.kind: exited | signaled | timeout | killed | exec-error; x.code, x.message, x.startedAt, x.endedAt
 *   await agent.close(); // the agent kills what is left and exits
 *
 * Failures of the invocation are results; a run rejects only when the agent is lost (its stream ended
 * or failed: AgentLostError) or broke the protocol (AgentProtocolError, saying what was wrong). Either
 * way the client is then dead: the environment around it must be replaced.
 */
import type { Readable, Writable } from "node:stream";
import {
  type AgentFrameType,
  AgentProtocolError,
  decodeFields,
  type Frame,
  FrameDecoder,
  killFrame,
  PROTOCOL_VERSION,
  runFrame,
} from "./agent-protocol.js";

export { AgentProtocolError } from "./agent-protocol.js";

/** the agent's streams ended or failed: it died, or its container did */
export class AgentLostError extends Error {
  override name = "AgentLostError";
}

export interface AgentHello {
  version: string;
  /** the agent's pid in its own pid namespace (1 in a container) */
  pid: number;
}

export type AgentExitKind = "exited" | "signaled" | "timeout" | "killed" | "exec-error";
const KINDS: readonly string[] = ["exited", "signaled", "timeout", "killed", "exec-error"];

export interface AgentRun {
  /** unique per client; the request id */
  id: string;
  /** argv[0] is looked up in the env's PATH when it has no slash */
  argv: readonly string[];
  /** the complete environment (the image's Env merged with the invocation's): entries `KEY=value`, or a map */
  env: readonly string[] | Readonly<Record<string, string>>;
  /** working folder; absent: the agent's own */
  cwd?: string;
  /** the agent kills the invocation's whole tree at this limit; absent or 0: none */
  timeoutMs?: number;
  /** the child's pid (in the agent's pid namespace), once it started */
  onStarted?: (pid: number) => void;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
}

export interface AgentExit {
  kind: AgentExitKind;
  /** exited: the exit status; signaled: the signal number; exec-error: the errno; else 0 */
  code: number;
  /** exec-error: what failed, e.g. `exec /bin/sh: No such file or directory`; else empty */
  message: string;
  /** the child's pid; undefined when it never started (exec-error) */
  pid?: number;
  /** ms since the epoch: when the agent said it started (or, without a start, when it was asked to) */
  startedAt: number;
  /** when its X frame arrived: its whole tree was gone and all its output forwarded */
  endedAt: number;
}

interface Pending {
  run: AgentRun;
  pid?: number;
  startedAt: number;
  resolve(x: AgentExit): void;
  reject(e: Error): void;
}

export interface AgentClientOptions {
  /** how long to wait for the agent's hello; default 10 s */
  helloTimeoutMs?: number;
}

export class AgentClient {
  private readonly decoder = new FrameDecoder<AgentFrameType>(["H", "S", "O", "E", "X"]);
  private pending?: Pending;
  private failure?: Error;
  private closing = false;
  private ended = false;
  private readonly endWaiters: (() => void)[] = [];
  private helloWaiter?: { resolve(h: AgentHello): void; reject(e: Error): void };
  /** set once the agent said hello */
  hello?: AgentHello;

  /** Waits for the agent's hello on `output`; rejects (AgentLostError) when it does not come in time. */
  static async connect(
    input: Writable,
    output: Readable,
    opts: AgentClientOptions = {},
  ): Promise<AgentClient> {
    const client = new AgentClient(input, output);
    const ms = opts.helloTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        client.waitHello(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new AgentLostError(`the agent did not say hello within ${ms} ms`)),
            ms,
          );
        }),
      ]);
    } catch (e) {
      client.fail(e as Error);
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return client;
  }

  private constructor(
    private readonly input: Writable,
    output: Readable,
  ) {
    output.on("data", (chunk: Buffer) => this.onData(chunk));
    output.on("end", () => this.onEnd("ended"));
    output.on("close", () => this.onEnd("closed"));
    output.on("error", (e) => this.onEnd(`failed: ${e.message}`));
    // EPIPE once the agent is gone: the output's end says the same, this only keeps it from throwing
    input.on("error", (e) => this.fail(new AgentLostError(`writing to the agent failed: ${e.message}`)));
  }

  /** false once the agent is lost, broke the protocol, or close() was called */
  get alive(): boolean {
    return this.failure === undefined && !this.closing && !this.ended;
  }

  /** Runs one invocation. Rejects at once when another one is running or the client is dead. */
  run(r: AgentRun): Promise<AgentExit> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing || this.ended) return Promise.reject(new AgentLostError("the agent was closed"));
    if (this.pending)
      return Promise.reject(new Error(`invocation ${this.pending.run.id} is still running; one at a time`));
    if (r.id === "") return Promise.reject(new Error("an invocation needs an id"));
    let frame: Buffer;
    try {
      const env = Array.isArray(r.env)
        ? (r.env as readonly string[])
        : Object.entries(r.env).map(([k, v]) => `${k}=${v}`);
      frame = runFrame({ id: r.id, argv: r.argv, env, cwd: r.cwd, timeoutMs: r.timeoutMs });
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<AgentExit>((resolve, reject) => {
      this.pending = { run: r, startedAt: Date.now(), resolve, reject };
      this.input.write(frame);
    });
  }

  /** Asks the agent to kill invocation `id` now (its run then resolves with kind `killed`). */
  kill(id: string): void {
    if (this.alive && this.pending?.run.id === id) this.input.write(killFrame(id));
  }

  /**
   * Ends the agent's stdin: it kills whatever still runs and exits. A pending run rejects with
   * AgentLostError. Resolves when the agent's stdout has ended.
   */
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      this.settle(new AgentLostError("the agent was closed during an invocation"));
      this.input.end();
    }
    if (this.ended) return Promise.resolve();
    return new Promise((resolve) => this.endWaiters.push(resolve));
  }

  private waitHello(): Promise<AgentHello> {
    if (this.hello) return Promise.resolve(this.hello);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.helloWaiter = { resolve, reject };
    });
  }

  private onData(chunk: Buffer): void {
    if (this.failure) return;
    try {
      for (const f of this.decoder.push(chunk)) this.onFrame(f);
    } catch (e) {
      if (!(e instanceof AgentProtocolError)) throw e;
      this.fail(e);
      // the agent is confused: ending its stdin makes it kill everything and exit
      this.input.end();
    }
  }

  private onFrame(f: Frame<AgentFrameType>): void {
    if (f.type === "H") {
      if (this.hello) throw new AgentProtocolError("a second hello");
      const [name, version, pid] = decodeFields("H", f.payload, 3);
      if (name !== "scar-agent")
        throw new AgentProtocolError(`hello from ${JSON.stringify(name)}, not scar-agent`);
      if (version !== PROTOCOL_VERSION)
        throw new AgentProtocolError(
          `the agent speaks protocol ${version}, this scar speaks ${PROTOCOL_VERSION}`,
        );
      this.hello = { version, pid: decimal("H", "pid", pid!) };
      this.helloWaiter?.resolve(this.hello);
      this.helloWaiter = undefined;
      return;
    }
    if (!this.hello) throw new AgentProtocolError(`a ${f.type} frame before the hello`);
    const p = this.pending;
    if (f.type === "O" || f.type === "E") {
      if (!p) throw new AgentProtocolError(`output (${f.type}) with no invocation running`);
      (f.type === "O" ? p.run.onStdout : p.run.onStderr)?.(f.payload);
      return;
    }
    const fields = decodeFields(f.type, f.payload, f.type === "S" ? 2 : 4);
    const id = fields[0]!;
    if (!p || p.run.id !== id)
      throw new AgentProtocolError(
        `${f.type} frame for invocation ${JSON.stringify(id)}, which is not running`,
      );
    if (f.type === "S") {
      if (p.pid !== undefined) throw new AgentProtocolError(`a second start of invocation ${id}`);
      p.pid = decimal("S", "pid", fields[1]!);
      p.startedAt = Date.now();
      p.run.onStarted?.(p.pid);
      return;
    }
    const [, kind, code, message] = fields;
    if (!KINDS.includes(kind!)) throw new AgentProtocolError(`X frame: unknown kind ${JSON.stringify(kind)}`);
    const status = decimal("X", "code", code!);
    this.pending = undefined;
    p.resolve({
      kind: kind as AgentExitKind,
      code: status,
      message: message!,
      ...(p.pid !== undefined ? { pid: p.pid } : {}),
      startedAt: p.startedAt,
      endedAt: Date.now(),
    });
  }

  private onEnd(how: string): void {
    if (!this.ended) {
      this.ended = true;
      this.fail(
        new AgentLostError(
          this.pending
            ? `the agent's output ${how} during invocation ${this.pending.run.id}`
            : `the agent's output ${how}`,
        ),
      );
    }
    for (const w of this.endWaiters.splice(0)) w();
  }

  /** the client is dead from now on; whoever waits learns why */
  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    this.helloWaiter?.reject(e);
    this.helloWaiter = undefined;
    this.settle(e);
  }

  private settle(e: Error): void {
    const p = this.pending;
    this.pending = undefined;
    p?.reject(e);
  }
}

function decimal(type: string, field: string, s: string): number {
  if (!/^\d{1,15}$/.test(s))
    throw new AgentProtocolError(`${type} frame: ${field} is not a number: ${JSON.stringify(s)}`);
  return Number(s);
}
