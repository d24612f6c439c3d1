/**
 * A local Lambda Runtime API (version 2018-06-01, see ../runtime-api-client.ts for the contract), the
 * server half of scar's Lambda emulator: it queues invocations, hands each to the runtime's `next`
 * with its request id, deadline, function ARN and trace id, and collects its response or error. As
 * Lambda, it runs one invocation at a time and ends an invocation at its deadline.
 *
 * It may also start the runtime itself (`runtime`): it then captures the runtime's output as the
 * invocation's logs, framed by Lambda's START / END / REPORT lines; at a timeout it kills the runtime
 * (its whole process group) and starts a new one for the next invocation, as Lambda resets the
 * execution environment. Without `runtime`, whoever started the runtime owns it, and there are no logs.
 *
 *   const emu = await RuntimeApiEmulator.start();
 *   const r = await emu.invoke(event, { timeoutMs: 3000 });
 *   await emu.close();
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

const PREFIX = "/2018-06-01/runtime";
/** Lambda's synchronous response limit. */
const MAX_RESPONSE_BYTES = 6 * 1024 * 1024;

export interface RuntimeCommand {
  command: string;
  args?: string[];
  /** The runtime's environment; AWS_LAMBDA_RUNTIME_API and Lambda's own variables are added. */
  env?: Record<string, string>;
  cwd?: string;
}

/** How a runtime ended: a process's exit, or a container's (`reason` "oom" when the memory limit killed it). */
export interface RuntimeExit {
  code: number | null;
  signal?: string;
  reason?: string;
  message?: string;
}

/** A runtime the emulator started: its output (stdout and stderr), its end, and a way to end it. */
export interface LaunchedRuntime {
  onOutput(listener: (text: string) => void): void;
  exited: Promise<RuntimeExit>;
  /** ends it and everything it started, at once (Lambda's reset after a timeout) */
  kill(): void;
}

/** Starts a runtime with Lambda's variables (AWS_LAMBDA_RUNTIME_API...) added to its own. */
export type RuntimeLauncher = (env: Record<string, string>) => LaunchedRuntime;

export interface EmulatorOptions {
  functionName?: string;
  memoryMB?: number;
  region?: string;
  /** a process to start as the runtime */
  runtime?: RuntimeCommand;
  /** or any other way to start one (a container of a function image: image-runtime.ts) */
  launcher?: RuntimeLauncher;
}

export interface InvokeOptions {
  /** The function's timeout: the invocation ends this long after the runtime got it. */
  timeoutMs: number;
  requestId?: string;
  traceId?: string;
}

export interface InvokeResult {
  /** `success`: /response; `error`: /error, an init error or a runtime that exited; `timeout`: the deadline passed. */
  status: "success" | "error" | "timeout";
  requestId: string;
  /** The response as the runtime sent it (parsed when JSON), or Lambda's error object. */
  body: unknown;
  /** Lambda-Runtime-Function-Error-Type of an error. */
  errorType?: string;
  /** START, what the runtime printed, END, REPORT: only when the emulator started the runtime. */
  logs?: string[];
}

interface Pending {
  id: string;
  payload: Buffer;
  opts: InvokeOptions;
  resolve: (r: InvokeResult) => void;
  /** Set when handed to the runtime. */
  startedAt?: number;
  deadline?: number;
  timer?: NodeJS.Timeout;
  logStart?: number;
  /** The runtime's init, when this invocation was the first of a new runtime (a cold start). */
  initMs?: number;
  result?: Omit<InvokeResult, "logs" | "requestId">;
}

export class RuntimeApiEmulator {
  private readonly queue: Pending[] = [];
  private current: Pending | undefined;
  private waiting: ServerResponse | undefined;
  private child: LaunchedRuntime | undefined;
  private childExit: Promise<void> | undefined;
  private initError: { body: unknown; errorType?: string } | undefined;
  /** The runtime's output, as lines (a partial last line is kept apart). */
  private readonly lines: string[] = [];
  private partial = "";
  private closed = false;
  /** When the current runtime was started, until its first invocation (Lambda reports the init once). */
  private spawnedAt: number | undefined;

  private constructor(
    private readonly server: Server,
    private readonly opts: EmulatorOptions,
  ) {}

  static async start(opts: EmulatorOptions = {}): Promise<RuntimeApiEmulator> {
    const server = createServer();
    const emu = new RuntimeApiEmulator(server, opts);
    server.on("request", (req, res) => emu.route(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    if (opts.runtime || opts.launcher) emu.startRuntime();
    return emu;
  }

  /** `host:port`, the value of AWS_LAMBDA_RUNTIME_API. */
  get address(): string {
    const a = this.server.address() as AddressInfo;
    return `127.0.0.1:${a.port}`;
  }

  get functionName(): string {
    return this.opts.functionName ?? "scar-function";
  }

  invoke(event: unknown, opts: InvokeOptions): Promise<InvokeResult> {
    if (this.closed) return Promise.reject(new Error("the emulator is closed"));
    if (!(opts.timeoutMs > 0)) return Promise.reject(new Error("timeoutMs must be more than 0"));
    const payload = Buffer.isBuffer(event)
      ? event
      : Buffer.from(typeof event === "string" ? event : JSON.stringify(event ?? {}));
    return new Promise((resolve) => {
      this.queue.push({ id: opts.requestId ?? randomUUID(), payload, opts, resolve });
      if (this.owned && !this.child) this.startRuntime();
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of [...this.queue, ...(this.current ? [this.current] : [])]) {
      clearTimeout(p.timer);
      p.resolve({ status: "error", requestId: p.id, body: { errorMessage: "the emulator was closed" } });
    }
    this.queue.length = 0;
    this.current = undefined;
    this.waiting?.destroy();
    await this.stopRuntime();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- the runtime process, when the emulator owns it ----

  /** Whether the emulator starts the runtime itself (and so has its logs). */
  private get owned(): boolean {
    return Boolean(this.opts.runtime || this.opts.launcher);
  }

  private launch(env: Record<string, string>): LaunchedRuntime {
    if (this.opts.launcher) return this.opts.launcher(env);
    const r = this.opts.runtime!;
    const child = spawn(r.command, r.args ?? [], {
      cwd: r.cwd,
      env: { ...r.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own process group, so a timeout ends everything it started
    });
    let spawnError: Error | undefined;
    const listeners: ((text: string) => void)[] = [];
    const onData = (chunk: Buffer) => {
      for (const l of listeners) l(chunk.toString("utf8"));
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    const exited = new Promise<RuntimeExit>((resolve) => {
      child.on("error", (err) => {
        spawnError = err;
        onData(Buffer.from(`cannot start the runtime: ${err.message}\n`));
      });
      child.on("close", (code, signal) =>
        resolve(
          spawnError
            ? { code: null, message: `Runtime could not be started: ${spawnError.message}` }
            : { code, ...(signal ? { signal } : {}) },
        ),
      );
    });
    return {
      onOutput: (l) => listeners.push(l),
      exited,
      kill() {
        try {
          if (child.pid) process.kill(-child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      },
    };
  }

  private startRuntime(): void {
    const env: Record<string, string> = {
      AWS_LAMBDA_RUNTIME_API: this.address,
      AWS_LAMBDA_FUNCTION_NAME: this.functionName,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(this.opts.memoryMB ?? 512),
      AWS_LAMBDA_FUNCTION_VERSION: "$LATEST",
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${this.functionName}`,
      AWS_REGION: this.opts.runtime?.env?.AWS_REGION ?? this.opts.region ?? "us-east-1",
    };
    const child = this.launch(env);
    this.child = child;
    this.spawnedAt = Date.now();
    this.initError = undefined;
    child.onOutput((text) => this.capture(text));
    this.childExit = child.exited.then((exit) => {
      if (this.partial) this.capture("\n");
      if (this.child !== child) return;
      this.child = undefined;
      this.waiting = undefined;
      const oom = exit.reason === "oom";
      const errorMessage =
        exit.message && exit.code === null && !exit.signal && !oom
          ? exit.message
          : `Runtime exited with error: ${oom ? "signal: killed" : exit.signal ? `signal: ${exit.signal}` : `exit status ${exit.code}`}`;
      const failure = { errorMessage, errorType: oom ? "Runtime.OutOfMemory" : "Runtime.ExitError" };
      const cur = this.current;
      if (cur) {
        // Lambda's own log lines for a runtime that died during an invocation
        if (!cur.result)
          this.finish(
            cur,
            { status: "error", body: failure, errorType: failure.errorType },
            `RequestId: ${cur.id} Error: ${failure.errorMessage}\n${failure.errorType}`,
          );
        this.settle(cur);
      } else {
        // It died before asking for an invocation: its init failed, and so do the waiting ones.
        const why = this.initError ?? { body: failure, errorType: failure.errorType };
        for (const p of this.queue.splice(0))
          p.resolve({
            status: "error",
            requestId: p.id,
            body: why.body,
            ...(why.errorType ? { errorType: why.errorType } : {}),
            logs: this.lines.splice(0),
          });
      }
      // A new execution environment for what is still queued (Lambda starts one after a crash).
      if (!this.closed && this.queue.length > 0) this.startRuntime();
    });
  }

  private async stopRuntime(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill();
    await this.childExit;
  }

  private capture(text: string): void {
    const parts = (this.partial + text).split("\n");
    this.partial = parts.pop() ?? "";
    this.lines.push(...parts);
  }

  // ---- invocations ----

  private dispatch(): void {
    if (this.current || !this.waiting || this.queue.length === 0) return;
    const p = this.queue.shift()!;
    const res = this.waiting;
    this.waiting = undefined;
    this.current = p;
    p.startedAt = Date.now();
    if (this.spawnedAt !== undefined) {
      p.initMs = p.startedAt - this.spawnedAt;
      this.spawnedAt = undefined;
    }
    p.deadline = p.startedAt + p.opts.timeoutMs;
    p.logStart = this.lines.length;
    p.timer = setTimeout(() => this.expire(p), p.opts.timeoutMs);
    res.writeHead(200, {
      "content-type": "application/json",
      "lambda-runtime-aws-request-id": p.id,
      "lambda-runtime-deadline-ms": String(p.deadline),
      "lambda-runtime-invoked-function-arn": `arn:aws:lambda:${this.opts.region ?? "us-east-1"}:000000000000:function:${this.functionName}`,
      ...(p.opts.traceId ? { "lambda-runtime-trace-id": p.opts.traceId } : {}),
    });
    res.end(p.payload);
  }

  private expire(p: Pending): void {
    if (this.current !== p || p.result) return;
    const seconds = (p.opts.timeoutMs / 1000).toFixed(2);
    const message = `${new Date().toISOString()} ${p.id} Task timed out after ${seconds} seconds`;
    this.finish(
      p,
      { status: "timeout", body: { errorMessage: message }, errorType: "Sandbox.Timedout" },
      message,
    );
    // Lambda resets the execution environment after a timeout.
    if (this.child) void this.stopRuntime();
  }

  /** Records the result; the invocation is settled when its logs are complete (see settle). */
  private finish(p: Pending, result: NonNullable<Pending["result"]>, extraLog?: string): void {
    clearTimeout(p.timer);
    p.result = result;
    if (extraLog && this.owned) this.capture(`${extraLog}\n`);
    // Without a runtime of its own there are no logs to wait for. With one, the runtime's output for
    // this invocation is all in the pipe once it asks for the next one (or exits): settle then.
    if (!this.owned) this.settle(p);
  }

  private settle(p: Pending): void {
    if (this.current !== p || !p.result) return;
    this.current = undefined;
    const logs = this.owned ? this.framedLogs(p) : undefined;
    p.resolve({ ...p.result, requestId: p.id, ...(logs ? { logs } : {}) });
    this.dispatch();
  }

  private framedLogs(p: Pending): string[] {
    const all = this.lines.splice(0);
    // What the runtime printed before it took the invocation (its init) comes before START, as in CloudWatch.
    const init = all.slice(0, p.logStart ?? 0);
    const body = all.slice(p.logStart ?? 0);
    const duration = Date.now() - (p.startedAt ?? Date.now());
    return [
      ...init,
      `START RequestId: ${p.id} Version: $LATEST`,
      ...body,
      `END RequestId: ${p.id}`,
      `REPORT RequestId: ${p.id}\tDuration: ${duration.toFixed(2)} ms\tBilled Duration: ${Math.max(1, Math.ceil(duration))} ms\tMemory Size: ${this.opts.memoryMB ?? 512} MB${p.initMs !== undefined ? `\tInit Duration: ${p.initMs.toFixed(2)} ms` : ""}`,
    ];
  }

  // ---- HTTP ----

  private route(req: IncomingMessage, res: ServerResponse): void {
    const url = (req.url ?? "").split("?")[0]!;
    if (req.method === "GET" && url === `${PREFIX}/invocation/next`) {
      this.onNext(res);
      return;
    }
    const m = /^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/.exec(url);
    if (req.method === "POST" && m) {
      void readBody(req, MAX_RESPONSE_BYTES).then((body) =>
        this.onResult(decodeURIComponent(m[1]!), m[2] as "response" | "error", req, res, body),
      );
      return;
    }
    if (req.method === "POST" && url === `${PREFIX}/init/error`) {
      void readBody(req, MAX_RESPONSE_BYTES).then((body) => {
        const errorType = header(req, "lambda-runtime-function-error-type");
        this.initError = { body: parse(body ?? Buffer.alloc(0)), ...(errorType ? { errorType } : {}) };
        reply(res, 202, { status: "OK" });
      });
      return;
    }
    reply(res, 404, { errorMessage: `no such path: ${req.method} ${url}`, errorType: "NotFound" });
  }

  private onNext(res: ServerResponse): void {
    if (this.waiting) {
      reply(res, 400, {
        errorMessage: "another invocation/next is already waiting",
        errorType: "InvalidRequest",
      });
      return;
    }
    // The runtime asks for the next invocation: it is done with the current one, logs included.
    const cur = this.current;
    this.waiting = res;
    res.on("close", () => {
      if (this.waiting === res) this.waiting = undefined;
    });
    if (cur?.result) setImmediate(() => this.settle(cur));
    else this.dispatch();
  }

  private onResult(
    id: string,
    kind: "response" | "error",
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer | undefined,
  ): void {
    const cur = this.current;
    if (!cur || cur.id !== id || cur.result) {
      reply(res, 400, {
        errorMessage: `no invocation '${id}' is waiting for a result`,
        errorType: "InvalidRequestID",
      });
      return;
    }
    if (body === undefined) {
      reply(res, 413, {
        errorMessage: `the ${kind} is larger than ${MAX_RESPONSE_BYTES} bytes`,
        errorType: "RequestEntityTooLarge",
      });
      this.finish(cur, {
        status: "error",
        body: {
          errorMessage: "Response payload size exceeded maximum allowed payload size",
          errorType: "Function.ResponseSizeTooLarge",
        },
        errorType: "Function.ResponseSizeTooLarge",
      });
      return;
    }
    reply(res, 202, { status: "OK" });
    if (kind === "response") this.finish(cur, { status: "success", body: parse(body) });
    else {
      const errorType = header(req, "lambda-runtime-function-error-type");
      this.finish(cur, { status: "error", body: parse(body), ...(errorType ? { errorType } : {}) });
    }
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function parse(body: Buffer): unknown {
  const text = body.toString("utf8");
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** The request's body, or undefined when it is larger than `max` (the rest is drained). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= max) chunks.push(c);
    });
    req.on("end", () => resolve(size <= max ? Buffer.concat(chunks) : undefined));
    req.on("error", () => resolve(undefined));
  });
}
