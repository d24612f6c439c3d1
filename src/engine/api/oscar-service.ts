/**
 * OSCAR's Service JSON as OSCAR's own clients write and read it (grycap/oscar `pkg/types/service.go`).
 *
 * In: oscar-cli sends what Go's `json.Marshal` writes for a Service, so every field it does not set
 * comes as Go's zero value: `null` maps and lists (`environment.Variables`, `input`, `output`,
 * `annotations`, `labels`, `allowed_users`, `environment.secrets`), `""` strings (`memory`, `cpu`,
 * `log_level`), zeroed structs (`expose`, `synchronous`, `mount`) and `storage_providers: {}`.
 * OSCAR reads null as absent and "" as "use the default"; `withoutGoZeroValues` does the same
 * before the FDL pipeline sees the definition.
 *
 * Out: `oscarServiceFields` gives every field of OSCAR's Service with what the client sent, OSCAR's
 * defaults where it sent nothing (a Go client decodes either), and `storage_providers.minio.default`
 * filled in with the embedded store as OSCAR fills it (keys shown as "hidden"; clients take the
 * keys from /system/config). Secrets are shown as OSCAR shows them: names with empty values.
 */

/** Strings OSCAR replaces with its default when they are empty. */
const DEFAULTED = ["memory", "cpu", "log_level"];

/** OSCAR's name for the admin as a service's owner (`types.DefaultOwner`). */
export const DEFAULT_OWNER = "cluster_admin";

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The keys of `o` whose value is null, left out. */
function withoutNulls(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null));
}

/**
 * A service definition with Go's zero values read as OSCAR reads them: null is absent, "" in
 * memory/cpu/log_level is the default. Anything else is left as sent (and checked by the FDL rules).
 */
export function withoutGoZeroValues(body: Record<string, unknown>): Record<string, unknown> {
  const out = withoutNulls(body);
  for (const k of DEFAULTED) if (out[k] === "") delete out[k];
  if (isObject(out.environment)) out.environment = withoutNulls(out.environment);
  for (const k of ["input", "output"]) {
    const list = out[k];
    if (Array.isArray(list)) out[k] = list.map((io) => (isObject(io) ? withoutNulls(io) : io));
  }
  if (isObject(out.storage_providers)) out.storage_providers = withoutNulls(out.storage_providers);
  return out;
}

/**
 * `expose` without zero `api_port`/`nodePort`: OSCAR 3.x has them as numbers (oscar-cli sends
 * `nodePort: 0`), OSCAR 4 as lists, so a zero one would not decode for the other version's clients;
 * left out, both read their zero value (OSCAR 4 leaves empty ones out too).
 */
function withoutZeroPorts(expose: Record<string, unknown>): Record<string, unknown> {
  const zero = (v: unknown) => v === 0 || v === null || (Array.isArray(v) && v.length === 0);
  return Object.fromEntries(
    Object.entries(expose).filter(([k, v]) => !(["api_port", "nodePort"].includes(k) && zero(v))),
  );
}

/** The embedded store as `storage_providers.minio.default` shows it. */
export interface DefaultMinio {
  endpoint: string;
  region: string;
}

/** What the engine knows of a deployed service, for the fields OSCAR shows. */
export interface ServiceFacts {
  name: string;
  /** The cluster id shown when the definition gave none. */
  clusterId: string;
  image: string;
  memory: string;
  cpu: string;
  log_level: string;
  script: string;
  token: string;
  variables: Record<string, string>;
  secretNames: string[];
  input: Record<string, unknown>[];
  output: Record<string, unknown>[];
  /** The definition as deployed (the FDL pipeline's `raw`: what was sent, passed through). */
  sent: Record<string, unknown>;
  /** The `storage_providers` block the client sent (minio.default left out: it is the engine's). */
  sentProviders: Record<string, unknown> | undefined;
}

/** Keys of the definition the engine reads itself (shown under `scar`, or computed), never echoed as sent. */
const ENGINE_KEYS = new Set([
  "name",
  "image",
  "memory",
  "cpu",
  "log_level",
  "script",
  "token",
  "environment",
  "input",
  "output",
  "storage_providers",
  "network",
  "seccomp",
  "isolation",
  "concurrency",
  "retries",
  "scar",
  "sent_storage_providers",
]);

/**
 * Every field of OSCAR's Service, in its order: the values the engine acts on, what the client sent
 * for the rest, and OSCAR's defaults for what it did not send.
 */
export function oscarServiceFields(f: ServiceFacts, minio: DefaultMinio): Record<string, unknown> {
  const sent = f.sent;
  const passthrough = Object.fromEntries(Object.entries(sent).filter(([k]) => !ENGINE_KEYS.has(k)));
  // OSCAR 3.x clients write `Variables`, later ones `variables`: one key is shown (Go matches keys
  // without regard to case, so both decode it).
  const {
    Variables: _v,
    variables: _vars,
    secrets: _s,
    ...env
  } = isObject(sent.environment) ? sent.environment : {};
  const providers: Record<string, unknown> = { ...(f.sentProviders ?? {}) };
  const minioIds = isObject(providers.minio) ? providers.minio : {};
  providers.minio = {
    ...minioIds,
    default: {
      endpoint: minio.endpoint,
      verify: false,
      access_key: "hidden",
      secret_key: "hidden",
      region: minio.region,
    },
  };
  if (isObject(passthrough.expose)) passthrough.expose = withoutZeroPorts(passthrough.expose);
  return {
    name: f.name,
    cluster_id: f.clusterId,
    memory: f.memory,
    cpu: f.cpu,
    total_memory: "",
    total_cpu: "",
    ephemeral_storage_request: "",
    enable_gpu: false,
    enable_sgx: false,
    image_prefetch: false,
    synchronous: { min_scale: 0, max_scale: 0 },
    log_level: f.log_level,
    image: f.image,
    alpine: false,
    token: f.token,
    file_stage_in: false,
    input: f.input,
    output: f.output,
    script: f.script,
    expose: {
      min_scale: 0,
      max_scale: 0,
      cpu_threshold: 0,
      rewrite_target: false,
      default_command: false,
      set_auth: false,
      health_path: "",
    },
    annotations: {},
    vo: "",
    labels: {},
    owner: DEFAULT_OWNER,
    interlink_node_name: "",
    visibility: "private",
    allowed_users: [],
    isolation_level: "",
    bucket_list: [],
    mount: { storage_provider: "", path: "" },
    volume_status: { enabled: false },
    ...passthrough,
    environment: {
      ...env,
      variables: f.variables,
      secrets: Object.fromEntries(f.secretNames.map((k) => [k, ""])),
    },
    storage_providers: providers,
  };
}
