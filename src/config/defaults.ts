/**
 * The default scar.cfg. It keeps SCAR 4.3's layout (so a SCAR user finds every key where they
 * left it) with these deliberate changes:
 * - `local` says where the embedded engine keeps its data and listens when scar starts it.
 * - `scar.target` picks where commands act: `local` (the embedded engine, needs no AWS account),
 *   `aws` or `oscar:<cluster>`.
 * - `aws.lambda.runtime` is `image` (container-image Lambda functions): SCAR's `python3.7` + udocker
 *   runtime can no longer be created on AWS, so the UDOCKER_* Lambda variables are gone too.
 */
export const CONFIG_VERSION = "2.0.0";

export function defaultConfig(): ScarConfigFile {
  return {
    scar: { config_version: CONFIG_VERSION, target: "local" },
    // The embedded engine the `local` target starts in the background when it is not running.
    // An empty data_dir means $SCAR_DATA_DIR, else ~/.scar/data; port 0 picks a free port;
    // insecure_registries: registries reached over plain HTTP (host:port).
    local: { data_dir: "", host: "127.0.0.1", port: 8080, s3_port: 9000, insecure_registries: [] },
    oscar: {
      my_oscar: {
        endpoint: "",
        auth_user: "",
        auth_password: "",
        ssl_verify: true,
        memory: "256Mi",
        cpu: "0.2",
        log_level: "INFO",
      },
    },
    aws: {
      iam: { boto_profile: "default", role: "" },
      lambda: {
        boto_profile: "default",
        region: "us-east-1",
        execution_mode: "lambda",
        timeout: 300,
        memory: 512,
        description: "Automatically generated lambda function",
        runtime: "image",
        architectures: ["x86_64"],
        layers: [],
        invocation_type: "RequestResponse",
        asynchronous: false,
        log_type: "Tail",
        log_level: "INFO",
        environment: { Variables: {} },
        deployment: { max_payload_size: 52428800, max_s3_payload_size: 262144000 },
        container: { environment: { Variables: {} }, timeout_threshold: 10 },
        supervisor: { version: "latest", layer_name: "faas-supervisor", license_info: "Apache 2.0" },
      },
      s3: {
        boto_profile: "default",
        region: "us-east-1",
        event: {
          Records: [
            {
              eventSource: "aws:s3",
              s3: {
                bucket: { name: "{bucket_name}", arn: "arn:aws:s3:::{bucket_name}" },
                object: { key: "{file_key}" },
              },
            },
          ],
        },
      },
      api_gateway: {
        boto_profile: "default",
        region: "us-east-1",
        endpoint: "https://{api_id}.execute-api.{api_region}.amazonaws.com/{stage_name}/launch",
        request_parameters: {
          "integration.request.header.X-Amz-Invocation-Type": "method.request.header.X-Amz-Invocation-Type",
        },
        http_method: "ANY",
        method: {
          authorizationType: "NONE",
          requestParameters: { "method.request.header.X-Amz-Invocation-Type": false },
        },
        integration: {
          type: "AWS_PROXY",
          integrationHttpMethod: "POST",
          uri: "arn:aws:apigateway:{api_region}:lambda:path/2015-03-31/functions/arn:aws:lambda:{lambda_region}:{account_id}:function:{function_name}/invocations",
          requestParameters: {
            "integration.request.header.X-Amz-Invocation-Type": "method.request.header.X-Amz-Invocation-Type",
          },
        },
        path_part: "{proxy+}",
        stage_name: "scar",
        service_id: "apigateway.amazonaws.com",
        source_arn_testing: "arn:aws:execute-api:{api_region}:{account_id}:{api_id}/*",
        source_arn_invocation: "arn:aws:execute-api:{api_region}:{account_id}:{api_id}/{stage_name}/ANY",
      },
      cloudwatch: { boto_profile: "default", region: "us-east-1", log_retention_policy_in_days: 30 },
      batch: {
        multi_node_parallel: { enabled: false, number_nodes: 10, main_node_index: 0 },
        boto_profile: "default",
        region: "us-east-1",
        vcpus: 1,
        memory: 1024,
        enable_gpu: false,
        state: "ENABLED",
        type: "MANAGED",
        environment: { Variables: {} },
        compute_resources: {
          security_group_ids: [],
          type: "EC2",
          desired_v_cpus: 0,
          min_v_cpus: 0,
          max_v_cpus: 2,
          subnets: [],
          instance_types: ["m3.medium"],
          launch_template_name: "faas-supervisor",
          instance_role: "arn:aws:iam::{account_id}:instance-profile/ecsInstanceRole",
        },
        service_role: "arn:aws:iam::{account_id}:role/service-role/AWSBatchServiceRole",
      },
    },
  };
}

/** The JSON document in scar.cfg. Sections are open: users and newer versions add keys. */
export interface ScarConfigFile {
  scar: { config_version: string; target?: string; [k: string]: unknown };
  local: LocalEngineConfig;
  oscar: Record<string, OscarClusterConfig>;
  aws: {
    iam: Record<string, unknown>;
    lambda: Record<string, unknown>;
    s3: Record<string, unknown>;
    api_gateway: Record<string, unknown>;
    cloudwatch: Record<string, unknown>;
    batch: Record<string, unknown>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export interface LocalEngineConfig {
  data_dir?: string;
  host?: string;
  port?: number;
  s3_port?: number;
  /** Registries the engine reaches over plain HTTP or without verifying their certificate. */
  insecure_registries?: string[];
  /** A bearer token that may read the engine's /metrics besides the admin (for a Prometheus server). */
  metrics_token?: string;
  /**
   * Origins (`http://host:port`, or "*") whose web pages may call the engine's API and object store
   * from a browser, e.g. the OSCAR dashboard served elsewhere; none by default.
   */
  cors_origins?: string[];
  /**
   * Origins of other scar engines (`http://host:port`) that the dashboard served here may work on:
   * its Content-Security-Policy lets the page call them. None by default (this engine only).
   */
  ui_engines?: string[];
  /** Free space the object store's uploads must leave ("64MiB", "1%"); absent: 64 MiB or 1% of a smaller disk. */
  store_reserve?: string | number;
  /** Seconds a warm execution environment waits for its function's next invocation before it is closed; default 300. */
  warm_idle_seconds?: number;
  /** Percent of the machine's memory the warm environments' memory limits may add up to before idle ones close; default 50. */
  warm_memory_percent?: number;
  /**
   * Start one warm environment of each function at deploy and at the engine's start, so that its
   * first invocation is warm; default false (each costs its container's memory while it waits).
   */
  warm_prewarm?: boolean;
  [k: string]: unknown;
}

export interface OscarClusterConfig {
  endpoint?: string;
  auth_user?: string;
  auth_password?: string;
  ssl_verify?: boolean;
  /** OIDC instead of basic auth (oscar-cli's options): an oidc-agent account, or a refresh token. */
  oidc_account_name?: string;
  oidc_refresh_token?: string;
  /** For a refresh token that is not a JWT saying them: its issuer, client (and secret) and scopes. */
  oidc_issuer?: string;
  oidc_client_id?: string;
  oidc_client_secret?: string;
  oidc_scope?: string;
  memory?: string;
  cpu?: string;
  log_level?: string;
  [k: string]: unknown;
}
