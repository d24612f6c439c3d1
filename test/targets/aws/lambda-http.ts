/**
 * A small Lambda at the SDK's endpoint (AWS_ENDPOINT_URL_LAMBDA): the REST API of Lambda's
 * 2015-03-31 version for the operations scar sends, so the real LambdaClient serialises, signs,
 * retries and parses as it does against AWS. Functions exist once created; an image function is
 * Pending for its first look, and an update leaves LastUpdateStatus InProgress for a few looks,
 * during which another update gets Lambda's ResourceConflictException. `fail()` queues answers an
 * operation gets before its real one (429 TooManyRequestsException, 409 ResourceConflictException).
 * `invoke` answers Invoke: the tests give it the function image run by the emulator.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export const LAMBDA_ACCOUNT = "123456789012";

export interface LambdaFn {
  config: Record<string, unknown>;
  imageUri: string;
  /** The image by digest, as Lambda resolves a tag when the code is set. */
  resolvedImageUri: string;
  tags: Record<string, string>;
  statements: Set<string>;
  /** GetFunctionConfiguration looks left before Pending becomes Active / InProgress becomes Successful. */
  pendingLooks: number;
  updateLooks: number;
}

export interface InvokeAnswer {
  /** the function's response, or Lambda's error object when `functionError` is set */
  payload: unknown;
  functionError?: string;
  /** the invocation's log lines (START ... REPORT) */
  logs: string[];
}

export interface Fault {
  status: number;
  type: string;
  message: string;
}

/** Lambda's LogType Tail: the last 4 KB of the invocation's log, base64. */
export function logTail(lines: string[]): string {
  const all = Buffer.from(lines.map((l) => `${l}\n`).join(""));
  return all.subarray(Math.max(0, all.length - 4096)).toString("base64");
}

export class LambdaHttp {
  readonly functions = new Map<string, LambdaFn>();
  /** Every operation received, in order (faults included). */
  readonly calls: string[] = [];
  invoke?: (fn: LambdaFn, payload: Buffer, requestId: string, type: string) => Promise<InvokeAnswer>;
  /** How many looks an update stays InProgress. */
  updateLooks = 2;
  /** What a tag is resolved to when a function's code is set (ECR's digest of it). */
  resolve: (imageUri: string) => string = (u) => u;
  private readonly faults = new Map<string, { fault: Fault; only?: string }[]>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
    readonly region: string,
  ) {}

  static async start(region = "eu-west-1"): Promise<LambdaHttp> {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    const l = new LambdaHttp(server, `http://127.0.0.1:${port}`, region);
    server.on("request", (req, res) => {
      l.route(req, res).catch((err: Error) => l.error(res, 500, "ServiceException", err.message));
    });
    return l;
  }

  /** The next `times` requests of `op` (for function `only`, if given) get this answer instead of the real one. */
  fail(op: string, times: number, fault: Fault, only?: string): void {
    const q = this.faults.get(op) ?? [];
    for (let i = 0; i < times; i++) q.push({ fault, ...(only ? { only } : {}) });
    this.faults.set(op, q);
  }

  /** Forgets the faults not yet given. */
  clearFaults(): void {
    this.faults.clear();
  }

  arnOf(name: string): string {
    return `arn:aws:lambda:${this.region}:${LAMBDA_ACCOUNT}:function:${name}`;
  }

  /** A function as CreateFunction makes it (already Active). */
  add(input: Record<string, unknown>): LambdaFn {
    const fn = this.create(input);
    fn.pendingLooks = 0;
    fn.config.State = "Active";
    return fn;
  }

  private create(i: Record<string, unknown>): LambdaFn {
    const name = String(i.FunctionName);
    const fn: LambdaFn = {
      config: {
        FunctionName: name,
        FunctionArn: this.arnOf(name),
        Role: i.Role,
        MemorySize: i.MemorySize ?? 128,
        Timeout: i.Timeout ?? 3,
        Description: i.Description ?? "",
        Environment: { Variables: (i.Environment as { Variables?: unknown } | undefined)?.Variables ?? {} },
        PackageType: "Image",
        State: "Pending",
        LastUpdateStatus: "Successful",
        ...(i.EphemeralStorage ? { EphemeralStorage: i.EphemeralStorage } : {}),
      },
      imageUri: String((i.Code as { ImageUri?: string } | undefined)?.ImageUri ?? ""),
      resolvedImageUri: this.resolve(String((i.Code as { ImageUri?: string } | undefined)?.ImageUri ?? "")),
      tags: (i.Tags as Record<string, string> | undefined) ?? {},
      statements: new Set(),
      pendingLooks: 1,
      updateLooks: 0,
    };
    this.functions.set(name, fn);
    return fn;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private send(
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    const text = body === undefined ? "" : JSON.stringify(body);
    res.writeHead(status, {
      "Content-Type": "application/json",
      "x-amzn-RequestId": randomUUID(),
      ...headers,
    });
    res.end(text);
  }

  private error(res: ServerResponse, status: number, type: string, message: string): void {
    this.send(res, status, { Type: "User", message }, { "x-amzn-ErrorType": type });
  }

  private view(fn: LambdaFn): Record<string, unknown> {
    return structuredClone(fn.config);
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url ?? "/", this.url);
    const parts = url.pathname.split("/").map(decodeURIComponent);
    const m = req.method ?? "GET";
    // /2015-03-31/functions[/name[/sub]]  and  /2017-03-31/tags/arn
    let op = "Unknown";
    if (parts[1] === "2015-03-31" && parts[2] === "functions") {
      const sub = parts[4] ?? "";
      if (parts.length <= 4 && !parts[3]) op = m === "POST" ? "CreateFunction" : "ListFunctions";
      else if (sub === "") op = m === "DELETE" ? "DeleteFunction" : "GetFunction";
      else if (sub === "configuration")
        op = m === "PUT" ? "UpdateFunctionConfiguration" : "GetFunctionConfiguration";
      else if (sub === "code") op = "UpdateFunctionCode";
      else if (sub === "policy") op = "AddPermission";
      else if (sub === "invocations") op = "Invoke";
    } else if (parts[1] === "2017-03-31" && parts[2] === "tags") op = "ListTags";
    this.calls.push(op);
    const name = parts[3] ?? "";
    const queue = this.faults.get(op) ?? [];
    const at = queue.findIndex((f) => !f.only || f.only === name);
    if (at >= 0) {
      const { fault } = queue.splice(at, 1)[0]!;
      return this.error(res, fault.status, fault.type, fault.message);
    }
    const body = () => JSON.parse(raw.toString("utf8") || "{}") as Record<string, unknown>;
    if (op === "CreateFunction") {
      const i = body();
      if (this.functions.has(String(i.FunctionName)))
        return this.error(res, 409, "ResourceConflictException", `Function already exist: ${i.FunctionName}`);
      return this.send(res, 201, this.view(this.create(i)));
    }
    if (op === "ListFunctions")
      return this.send(res, 200, { Functions: [...this.functions.values()].map((f) => this.view(f)) });
    if (op === "ListTags") {
      const arn = parts.slice(3).join("/");
      const fn = [...this.functions.values()].find((f) => f.config.FunctionArn === arn);
      return this.send(res, 200, { Tags: fn?.tags ?? {} });
    }
    const fn = this.functions.get(name);
    if (!fn)
      return this.error(res, 404, "ResourceNotFoundException", `Function not found: ${this.arnOf(name)}`);
    const busy = () =>
      this.error(
        res,
        409,
        "ResourceConflictException",
        `The operation cannot be performed at this time. An update is in progress for resource: ${fn.config.FunctionArn}`,
      );
    switch (op) {
      case "GetFunction":
        return this.send(res, 200, {
          Configuration: this.view(fn),
          Code: { RepositoryType: "ECR", ImageUri: fn.imageUri, ResolvedImageUri: fn.resolvedImageUri },
          Tags: fn.tags,
        });
      case "GetFunctionConfiguration": {
        // `n` looks see Pending / InProgress, the next one Active / Successful
        if (fn.pendingLooks > 0) fn.pendingLooks--;
        else fn.config.State = "Active";
        if (fn.updateLooks > 0) fn.updateLooks--;
        else fn.config.LastUpdateStatus = "Successful";
        return this.send(res, 200, this.view(fn));
      }
      case "DeleteFunction":
        this.functions.delete(name);
        res.writeHead(204, { "x-amzn-RequestId": randomUUID() });
        return void res.end();
      case "AddPermission": {
        const i = body();
        if (fn.config.State === "Pending")
          return this.error(
            res,
            409,
            "ResourceConflictException",
            "The operation cannot be performed at this time. The function is currently in the following state: Pending",
          );
        const sid = String(i.StatementId);
        if (fn.statements.has(sid))
          return this.error(
            res,
            409,
            "ResourceConflictException",
            `The statement id (${sid}) provided already exists. Please provide a new statement id, or remove the existing statement.`,
          );
        fn.statements.add(sid);
        return this.send(res, 201, { Statement: JSON.stringify({ Sid: sid }) });
      }
      case "UpdateFunctionCode": {
        if (fn.config.LastUpdateStatus === "InProgress") return busy();
        fn.imageUri = String(body().ImageUri);
        fn.resolvedImageUri = this.resolve(fn.imageUri);
        fn.config.LastUpdateStatus = "InProgress";
        fn.updateLooks = this.updateLooks;
        return this.send(res, 200, this.view(fn));
      }
      case "UpdateFunctionConfiguration": {
        if (fn.config.LastUpdateStatus === "InProgress") return busy();
        const i = body();
        for (const k of ["MemorySize", "Timeout", "Description", "Role", "Environment", "EphemeralStorage"])
          if (i[k] !== undefined) fn.config[k] = i[k];
        fn.config.LastUpdateStatus = "InProgress";
        fn.updateLooks = this.updateLooks;
        return this.send(res, 200, this.view(fn));
      }
      case "Invoke": {
        if (!this.invoke) return this.error(res, 500, "ServiceException", "no function runtime in this test");
        const type = String(req.headers["x-amz-invocation-type"] ?? "RequestResponse");
        const requestId = randomUUID();
        if (type === "Event") {
          // Lambda queues it and answers at once
          void this.invoke(fn, raw, requestId, type).catch(() => {});
          res.writeHead(202, { "x-amzn-RequestId": requestId });
          return void res.end();
        }
        const a = await this.invoke(fn, raw, requestId, type);
        res.writeHead(200, {
          "Content-Type": "application/json",
          "x-amzn-RequestId": requestId,
          "X-Amz-Executed-Version": "$LATEST",
          ...(req.headers["x-amz-log-type"] === "Tail" ? { "X-Amz-Log-Result": logTail(a.logs) } : {}),
          ...(a.functionError ? { "X-Amz-Function-Error": a.functionError } : {}),
        });
        return void res.end(JSON.stringify(a.payload));
      }
    }
    return this.error(res, 400, "InvalidRequestContentException", `no operation ${m} ${url.pathname}`);
  }
}
