/**
 * SCAR's synchronous response: the API-Gateway proxy shape, so `scar run`, `scar invoke` and any
 * program written against SCAR read it unchanged.
 */
export interface LambdaResponse {
  statusCode: number;
  headers: Record<string, string>;
  /** base64 of the script's stdout+stderr, or of `{"exception": ...}` on failure. */
  body: string;
  isBase64Encoded: true;
}

export function lambdaResponse(r: {
  fn: string;
  requestId: string;
  logStream: string | undefined;
  ok: boolean;
  body: Buffer;
  error?: string | undefined;
}): LambdaResponse {
  const headers = {
    "amz-lambda-request-id": r.requestId,
    "amz-log-group-name": `/aws/lambda/${r.fn}`,
    "amz-log-stream-name": r.logStream ?? r.requestId,
  };
  if (r.ok) return { statusCode: 200, headers, body: r.body.toString("base64"), isBase64Encoded: true };
  const exception = Buffer.from(JSON.stringify({ exception: r.error ?? "error" }));
  return { statusCode: 500, headers, body: exception.toString("base64"), isBase64Encoded: true };
}
