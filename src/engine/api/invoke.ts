/**
 * SCAR's HTTP endpoint (its API Gateway, `ANY /invoke/<function>` here) for functions deployed with
 * `api_gateway`: the request becomes an API-Gateway proxy event, as AWS hands it to Lambda, and the
 * supervisor reads it as faas-supervisor does (query parameters -> `CONT_VAR_<name>`; the body parsed
 * again: JSON as JSON, anything else base64-decoded into the input file, which is how `scar invoke
 * -db FILE` sends a file). No authentication, like SCAR's method (authorizationType NONE).
 *
 *   X-Amz-Invocation-Type: Event -> 202 {"jobID"} and `amz-lambda-request-id`
 *   otherwise                    -> the function's proxy response: 200 (500 if the supervisor failed),
 *                                   body = base64 of the script's output, `amz-lambda-request-id`,
 *                                   `amz-log-group-name`, `amz-log-stream-name`
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Engine } from "../engine.js";
import { logGroupName, logStreamName } from "../jobs/index.js";
import { HttpError, readBody, sendJson, sendText } from "./http.js";

/** The API-Gateway (REST API, proxy integration) event of a request. */
export function apiGatewayEvent(req: IncomingMessage, url: URL, body: Buffer): Record<string, unknown> {
  const headers: Record<string, string> = {};
  const multiHeaders: Record<string, string[]> = {};
  // rawHeaders keeps the case the client wrote, as API Gateway does.
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const k = req.rawHeaders[i]!;
    const v = req.rawHeaders[i + 1]!;
    headers[k] = v;
    multiHeaders[k] = [...(multiHeaders[k] ?? []), v];
  }
  const params: Record<string, string> = {};
  const multiParams: Record<string, string[]> = {};
  for (const [k, v] of url.searchParams) {
    params[k] = v; // API Gateway keeps the last value
    multiParams[k] = [...(multiParams[k] ?? []), v];
  }
  const hasParams = Object.keys(params).length > 0;
  const method = req.method ?? "GET";
  return {
    resource: "/{proxy+}",
    path: url.pathname,
    httpMethod: method,
    headers,
    multiValueHeaders: multiHeaders,
    queryStringParameters: hasParams ? params : null,
    multiValueQueryStringParameters: hasParams ? multiParams : null,
    pathParameters: null,
    stageVariables: null,
    requestContext: {
      requestId: randomUUID(),
      stage: "scar",
      httpMethod: method,
      path: url.pathname,
      requestTimeEpoch: Date.now(),
      identity: { sourceIp: req.socket.remoteAddress ?? null },
    },
    body: body.length > 0 ? body.toString("utf8") : null,
    isBase64Encoded: false,
  };
}

export async function invokeEndpoint(
  engine: Engine,
  name: string,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  limit: number,
): Promise<void> {
  const fn = engine.registry.get(name);
  // One answer for a missing function and one without an endpoint: callers here are not
  // authenticated, and must not learn which functions exist.
  if (!fn?.spec.api_gateway)
    throw new HttpError(
      404,
      `no HTTP endpoint '/invoke/${name}': a function gets one when it is deployed with an api_gateway name (scar.api_gateway in the service JSON)`,
    );
  const body = await readBody(req, limit);
  const event = apiGatewayEvent(req, url, body);
  const trigger = { type: "http" as const, path: url.pathname, method: req.method ?? "GET" };
  const isAsync = String(req.headers["x-amz-invocation-type"] ?? "").toLowerCase() === "event";
  const { job, result } = await engine.invoke(name, event, { sync: !isAsync, trigger });
  const names = {
    "amz-lambda-request-id": job.id,
    "amz-log-group-name": logGroupName(job.function),
    "amz-log-stream-name": logStreamName(job),
  };
  for (const [k, v] of Object.entries(names)) res.setHeader(k, v);
  if (isAsync) {
    sendJson(res, 202, { jobID: job.id });
    return;
  }
  res.setHeader("x-scar-job-status", job.status);
  if (!result)
    throw new HttpError(
      500,
      `the invocation ended without a result (${job.reason ?? job.status}: ${job.error ?? ""})`,
    );
  sendText(res, result.response.statusCode, result.response.body);
}
