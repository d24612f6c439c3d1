/**
 * The function's HTTP endpoint (SCAR's `api_gateway`): a REST API whose `{proxy+}` resource sends
 * ANY method to the function as a Lambda proxy integration, deployed to stage `scar`; `invoke` calls
 * `https://<id>.execute-api.<region>.amazonaws.com/scar/launch`.
 */
import {
  type APIGatewayClient,
  CreateDeploymentCommand,
  CreateResourceCommand,
  CreateRestApiCommand,
  DeleteRestApiCommand,
  GetResourcesCommand,
  PutIntegrationCommand,
  PutMethodCommand,
} from "@aws-sdk/client-api-gateway";
import { isNotFound } from "./errors.js";

export const STAGE = "scar";
const INVOCATION_TYPE_HEADER = "X-Amz-Invocation-Type";

export interface ApiSettings {
  name: string;
  region: string;
  partition: string;
  functionArn: string;
}

/** Where `scar invoke` reaches the API; LocalStack serves it under the endpoint given to scar. */
export function apiUrl(id: string, region: string, env: NodeJS.ProcessEnv = process.env): string {
  const custom = env.AWS_ENDPOINT_URL_API_GATEWAY || env.AWS_ENDPOINT_URL;
  if (custom) return `${custom.replace(/\/+$/, "")}/restapis/${id}/${STAGE}/_user_request_/launch`;
  return `https://${id}.execute-api.${region}.amazonaws.com/${STAGE}/launch`;
}

/** The source ARN that lets this API (any stage, method and path) invoke the function. */
export function apiSourceArn(s: { partition: string; region: string; account: string; id: string }): string {
  return `arn:${s.partition}:execute-api:${s.region}:${s.account}:${s.id}/*`;
}

/** Creates the REST API; returns its id. The rest is `wireApi`, once the function exists. */
export async function createApi(apigw: APIGatewayClient, name: string, fn: string): Promise<string> {
  const api = await apigw.send(
    new CreateRestApiCommand({
      name,
      description: `scar: HTTP endpoint of function '${fn}'`,
      tags: { createdby: "scar" },
    }),
  );
  return api.id!;
}

/** `{proxy+}` ANY -> the function (AWS_PROXY), then a deployment to stage `scar`. */
export async function wireApi(apigw: APIGatewayClient, id: string, s: ApiSettings): Promise<void> {
  const resources = await apigw.send(new GetResourcesCommand({ restApiId: id }));
  const root = resources.items?.find((r) => r.path === "/");
  let proxy = resources.items?.find((r) => r.pathPart === "{proxy+}");
  proxy ??= await apigw.send(
    new CreateResourceCommand({ restApiId: id, parentId: root!.id!, pathPart: "{proxy+}" }),
  );
  if (!proxy.resourceMethods?.ANY) {
    await apigw.send(
      new PutMethodCommand({
        restApiId: id,
        resourceId: proxy.id!,
        httpMethod: "ANY",
        authorizationType: "NONE",
        requestParameters: { [`method.request.header.${INVOCATION_TYPE_HEADER}`]: false },
      }),
    );
  }
  await apigw.send(
    new PutIntegrationCommand({
      restApiId: id,
      resourceId: proxy.id!,
      httpMethod: "ANY",
      type: "AWS_PROXY",
      integrationHttpMethod: "POST",
      uri: `arn:${s.partition}:apigateway:${s.region}:lambda:path/2015-03-31/functions/${s.functionArn}/invocations`,
      requestParameters: {
        [`integration.request.header.${INVOCATION_TYPE_HEADER}`]: `method.request.header.${INVOCATION_TYPE_HEADER}`,
      },
    }),
  );
  await apigw.send(new CreateDeploymentCommand({ restApiId: id, stageName: STAGE }));
}

export async function deleteApi(apigw: APIGatewayClient, id: string): Promise<boolean> {
  try {
    await apigw.send(new DeleteRestApiCommand({ restApiId: id }));
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}
