/**
 * A client of the AWS Lambda Runtime API, version 2018-06-01: what a custom runtime uses to take
 * invocations from Lambda and hand back their results. Paths, headers and status codes follow
 * https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html :
 *
 * - GET  /runtime/invocation/next           -> 200, the event; headers Lambda-Runtime-Aws-Request-Id,
 *   Lambda-Runtime-Deadline-Ms (Unix ms), Lambda-Runtime-Invoked-Function-Arn, Lambda-Runtime-Trace-Id
 *   (the X-Ray header, which the runtime exports as _X_AMZN_TRACE_ID). No timeout on this request:
 *   Lambda may freeze the environment while it waits.
 * - POST /runtime/invocation/<id>/response  -> 202; 400 bad request, 413 payload too large.
 * - POST /runtime/invocation/<id>/error     -> 202; body {errorMessage, errorType, stackTrace?},
 *   header Lambda-Runtime-Function-Error-Type.
 * - POST /runtime/init/error                -> 202; same body; the runtime then exits.
 * A 500 on any of them is a container error: the runtime must exit.
 *
 * The endpoint is `AWS_LAMBDA_RUNTIME_API`, a `host:port`.
 */
import { Agent, request } from "undici";

const VERSION = "2018-06-01";

export interface Invocation {
  requestId: string;
  /** When Lambda ends the invocation, Unix ms. */
  deadlineMs: number;
  functionArn?: string;
  traceId?: string;
  /** The event as it came (JSON text for every event source Lambda has). */
  event: Buffer;
}

/** The body of an error report, as the Runtime API takes it. */
export interface RuntimeErrorReport {
  errorMessage: string;
  errorType: string;
  stackTrace?: string[];
}

export class RuntimeApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "RuntimeApiError";
  }
}

export class RuntimeApiClient {
  private readonly base: string;
  // `next` may wait as long as Lambda keeps the environment frozen: no header or body timeout.
  private readonly agent = new Agent({ headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 60_000 });

  constructor(hostPort: string) {
    if (!/^[^/\s]+:\d+$/.test(hostPort))
      throw new RuntimeApiError(`AWS_LAMBDA_RUNTIME_API must be host:port, not '${hostPort}'`, 0);
    this.base = `http://${hostPort}/${VERSION}/runtime`;
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env): RuntimeApiClient {
    const api = env.AWS_LAMBDA_RUNTIME_API;
    if (!api)
      throw new RuntimeApiError(
        "AWS_LAMBDA_RUNTIME_API is not set: this program runs inside AWS Lambda (or scar's emulator)",
        0,
      );
    return new RuntimeApiClient(api);
  }

  async next(): Promise<Invocation> {
    const res = await request(`${this.base}/invocation/next`, { method: "GET", dispatcher: this.agent });
    const body = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode !== 200)
      throw new RuntimeApiError(
        `invocation/next answered ${res.statusCode}: ${body.toString("utf8").slice(0, 500)}`,
        res.statusCode,
      );
    const h = (name: string): string | undefined => {
      const v = res.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const requestId = h("lambda-runtime-aws-request-id");
    if (!requestId)
      throw new RuntimeApiError("invocation/next answered without Lambda-Runtime-Aws-Request-Id", 200);
    const deadline = Number(h("lambda-runtime-deadline-ms"));
    if (!Number.isFinite(deadline))
      throw new RuntimeApiError(
        `invocation/next answered without a valid Lambda-Runtime-Deadline-Ms ('${h("lambda-runtime-deadline-ms")}')`,
        200,
      );
    const functionArn = h("lambda-runtime-invoked-function-arn");
    const traceId = h("lambda-runtime-trace-id");
    return {
      requestId,
      deadlineMs: deadline,
      ...(functionArn ? { functionArn } : {}),
      ...(traceId ? { traceId } : {}),
      event: body,
    };
  }

  async respond(requestId: string, payload: unknown): Promise<void> {
    await this.post(`invocation/${encodeURIComponent(requestId)}/response`, JSON.stringify(payload));
  }

  async reportError(requestId: string, report: RuntimeErrorReport): Promise<void> {
    await this.post(
      `invocation/${encodeURIComponent(requestId)}/error`,
      JSON.stringify(report),
      report.errorType,
    );
  }

  async reportInitError(report: RuntimeErrorReport): Promise<void> {
    await this.post("init/error", JSON.stringify(report), report.errorType);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private async post(path: string, body: string, errorType?: string): Promise<void> {
    const res = await request(`${this.base}/${path}`, {
      method: "POST",
      dispatcher: this.agent,
      headers: {
        "content-type": "application/json",
        ...(errorType ? { "lambda-runtime-function-error-type": errorType } : {}),
      },
      body,
    });
    const text = await res.body.text();
    if (res.statusCode !== 202)
      throw new RuntimeApiError(`${path} answered ${res.statusCode}: ${text.slice(0, 500)}`, res.statusCode);
  }
}
