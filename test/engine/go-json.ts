/**
 * Whether a JSON value decodes into a Go type with `encoding/json` (as oscar-cli decodes the engine's
 * answers into OSCAR's types), and what Go's `json.Marshal` writes for OSCAR's Service: the facts of
 * Go's decoder the tests need. `null` decodes into anything (it leaves the zero value); a string
 * field takes only a string, a bool only a bool, an int only a whole number; a map or slice takes an
 * object or array (or null); a struct an object, whose keys match its fields without regard to case
 * (unknown keys are ignored).
 *
 * The types below are OSCAR's (grycap/oscar `pkg/types`, `pkg/utils/minio.go`): v3.3.0's, the one
 * oscar-cli is built with, and the current one the dashboard follows.
 */
export type GoType =
  | "string"
  | "bool"
  | "int"
  | "float"
  | "any"
  | { map: GoType }
  | { slice: GoType }
  | { struct: Record<string, GoType> };

/** The decoding errors, as `<path>: <what>`; empty when Go decodes the value. */
export function goDecodeErrors(value: unknown, type: GoType, path = "$"): string[] {
  if (value === null || type === "any") return [];
  const kind = Array.isArray(value) ? "array" : typeof value;
  const bad = (want: string) => [`${path}: cannot unmarshal ${kind} into Go value of type ${want}`];
  if (type === "string") return typeof value === "string" ? [] : bad("string");
  if (type === "bool") return typeof value === "boolean" ? [] : bad("bool");
  if (type === "int") return typeof value === "number" && Number.isInteger(value) ? [] : bad("int");
  if (type === "float") return typeof value === "number" ? [] : bad("float64");
  if ("slice" in type) {
    if (!Array.isArray(value)) return bad("slice");
    return value.flatMap((v, i) => goDecodeErrors(v, type.slice, `${path}[${i}]`));
  }
  if (typeof value !== "object" || Array.isArray(value)) return bad("map" in type ? "map" : "struct");
  const entries = Object.entries(value as Record<string, unknown>);
  if ("map" in type) return entries.flatMap(([k, v]) => goDecodeErrors(v, type.map, `${path}.${k}`));
  const fields = Object.entries(type.struct);
  return entries.flatMap(([k, v]) => {
    const field = fields.find(([n]) => n === k) ?? fields.find(([n]) => n.toLowerCase() === k.toLowerCase());
    return field ? goDecodeErrors(v, field[1], `${path}.${k}`) : [];
  });
}

const strings: GoType = { map: "string" };
const io: GoType = {
  struct: {
    storage_provider: "string",
    path: "string",
    suffix: { slice: "string" },
    prefix: { slice: "string" },
  },
};
const minioProvider: GoType = {
  struct: {
    endpoint: "string",
    verify: "bool",
    access_key: "string",
    secret_key: "string",
    region: "string",
  },
};
const providers: GoType = {
  struct: {
    s3: { map: { struct: { access_key: "string", secret_key: "string", region: "string" } } },
    minio: { map: minioProvider },
    onedata: { map: { struct: { oneprovider_host: "string", token: "string", space: "string" } } },
    webdav: { map: { struct: { hostname: "string", login: "string", password: "string" } } },
  },
};
const cluster: GoType = {
  struct: { endpoint: "string", auth_user: "string", auth_password: "string", ssl_verify: "bool" },
};

/** OSCAR v3.3.0's Service (what oscar-cli decodes into). */
export const SERVICE_V3: GoType = {
  struct: {
    name: "string",
    cluster_id: "string",
    memory: "string",
    cpu: "string",
    total_memory: "string",
    total_cpu: "string",
    enable_gpu: "bool",
    enable_sgx: "bool",
    image_prefetch: "bool",
    synchronous: { struct: { min_scale: "int", max_scale: "int" } },
    replicas: { slice: "any" },
    delegation: "string",
    rescheduler_threshold: "int",
    log_level: "string",
    image: "string",
    alpine: "bool",
    token: "string",
    file_stage_in: "bool",
    input: { slice: io },
    output: { slice: io },
    script: "string",
    image_pull_secrets: { slice: "string" },
    expose: {
      struct: {
        min_scale: "int",
        max_scale: "int",
        api_port: "int",
        cpu_threshold: "int",
        rewrite_target: "bool",
        nodePort: "int",
        default_command: "bool",
        set_auth: "bool",
      },
    },
    environment: { struct: { Variables: strings } },
    annotations: strings,
    vo: "string",
    labels: strings,
    storage_providers: providers,
    clusters: { map: cluster },
    owner: "string",
    interlink_node_name: "string",
    allowed_users: { slice: "string" },
    mount: io,
  },
};

/** OSCAR's current Service (v4; the dashboard's model follows it). */
export const SERVICE_V4: GoType = {
  struct: {
    ...(SERVICE_V3 as { struct: Record<string, GoType> }).struct,
    ephemeral_storage_request: "string",
    expose: {
      struct: {
        min_scale: "int",
        max_scale: "int",
        api_port: { slice: "int" },
        cpu_threshold: "int",
        rewrite_target: "bool",
        nodePort: { slice: "int" },
        default_command: "bool",
        set_auth: "bool",
        auth_type: "string",
        health_path: "string",
        probe_mode: "string",
      },
    },
    environment: { struct: { variables: strings, secrets: strings } },
    namespace: "string",
    visibility: "string",
    isolation_level: "string",
    bucket_list: { slice: "string" },
    volume_status: { struct: { enabled: "bool", name: "string", phase: "string", error: "string" } },
  },
};

/** OSCAR's ConfigForUser (GET /system/config). */
export const CONFIG_FOR_USER: GoType = {
  struct: {
    config: {
      struct: {
        name: "string",
        namespace: "string",
        services_namespace: "string",
        gpu_available: "bool",
        interLink_available: "bool",
        yunikorn_enable: "bool",
        kueue_enable: "bool",
        volume_enable: "bool",
        oidc_groups: { slice: "string" },
        minio_quota_enabled: "bool",
      },
    },
    minio_provider: minioProvider,
    allowed_image_repositories: { slice: "string" },
  },
};

/** utils.MinIOBucket, with the listing fields of GET /system/buckets/<b>. */
export const MINIO_BUCKET: GoType = {
  struct: {
    bucket_name: "string",
    visibility: "string",
    allowed_users: { slice: "string" },
    owner: "string",
    metadata: strings,
    objects: { slice: { struct: { object_name: "string", size_bytes: "int", last_modified: "string" } } },
    next_page: "string",
    is_truncated: "bool",
    returned_items: "int",
  },
};

/** types.StatusInfo (GET /system/status). */
export const STATUS_INFO: GoType = {
  struct: {
    cluster: {
      struct: {
        nodes_count: "int",
        metrics: {
          struct: {
            cpu: { map: "int" },
            memory: { map: "int" },
            gpu: { struct: { total_gpu: "int" } },
          },
        },
        nodes: {
          slice: {
            struct: {
              name: "string",
              cpu: { map: "int" },
              memory: { map: "int" },
              gpu: "int",
              is_interlink: "bool",
              status: "string",
              conditions: { slice: { struct: { type: "string", status: "bool" } } },
            },
          },
        },
      },
    },
    oscar: {
      struct: {
        deployment_name: "string",
        ready: "bool",
        deployment: {
          struct: {
            available_replicas: "int",
            ready_replicas: "int",
            replicas: "int",
            strategy: "string",
            labels: strings,
          },
        },
        jobs_count: "int",
        pods: { struct: { total: "int", states: { map: "int" } } },
        oidc: { struct: { enabled: "bool", issuers: { slice: "string" }, groups: { slice: "string" } } },
      },
    },
    minio: { struct: { buckets_count: "int", total_objects: "int" } },
  },
};

/** types.ServiceDeploymentStatus (GET /system/services/<name>/deployment). */
export const DEPLOYMENT_STATUS: GoType = {
  struct: {
    service_name: "string",
    state: "string",
    active_instances: "int",
    affected_instances: "int",
    resource_kind: "string",
  },
};

/** OSCAR's job list (GET /system/logs/<name>). */
export const JOBS_INFO: GoType = {
  struct: {
    jobs: {
      map: {
        struct: { status: "string", creation_time: "string", start_time: "string", finish_time: "string" },
      },
    },
    next_page: "string",
  },
};

/**
 * What oscar-cli's `apply` sends for an FDL service (OSCAR v3.3.0's Service through Go's
 * json.Marshal, fields in the struct's order): every field it does not set is Go's zero value.
 * `clusters` holds the cluster of oscar-cli's config; `storage_providers` is `{}` (apply makes an
 * empty MinIO map, which `omitempty` leaves out).
 */
export function oscarCliService(o: {
  name: string;
  image: string;
  script: string;
  clusterId: string;
  endpoint: string;
  memory?: string;
  cpu?: string;
  input?: unknown[] | null;
  output?: unknown[] | null;
  variables?: Record<string, string> | null;
  storageProviders?: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    name: o.name,
    cluster_id: o.clusterId,
    memory: o.memory ?? "",
    cpu: o.cpu ?? "",
    total_memory: "",
    total_cpu: "",
    enable_gpu: false,
    enable_sgx: false,
    image_prefetch: false,
    synchronous: { min_scale: 0, max_scale: 0 },
    delegation: "",
    rescheduler_threshold: 0,
    log_level: "",
    image: o.image,
    alpine: false,
    token: "",
    file_stage_in: false,
    input: o.input ?? null,
    output: o.output ?? null,
    script: o.script,
    expose: {
      min_scale: 0,
      max_scale: 0,
      cpu_threshold: 0,
      rewrite_target: false,
      nodePort: 0,
      default_command: false,
      set_auth: false,
    },
    environment: { Variables: o.variables ?? null },
    annotations: null,
    vo: "",
    labels: null,
    storage_providers: o.storageProviders ?? {},
    clusters: {
      [o.clusterId]: { endpoint: o.endpoint, auth_user: "scar", auth_password: "secret", ssl_verify: false },
    },
    owner: "",
    interlink_node_name: "",
    allowed_users: null,
    mount: { storage_provider: "", path: "" },
  };
}

/**
 * The same through OSCAR v4's types (a newer oscar-cli, the dashboard's FDL editor): `variables`,
 * `secrets: null`, the v4 zero values of visibility, isolation_level, bucket_list, volume_status.
 */
export function oscarV4Service(o: Parameters<typeof oscarCliService>[0]): Record<string, unknown> {
  const v3 = oscarCliService(o);
  const { delegation: _d, rescheduler_threshold: _r, environment: _e, expose: _x, ...rest } = v3;
  return {
    ...rest,
    ephemeral_storage_request: "",
    expose: {
      min_scale: 0,
      max_scale: 0,
      cpu_threshold: 0,
      rewrite_target: false,
      default_command: false,
      set_auth: false,
      health_path: "",
    },
    environment: { variables: o.variables ?? null, secrets: null },
    visibility: "",
    isolation_level: "",
    bucket_list: null,
    volume_status: { enabled: false },
  };
}
