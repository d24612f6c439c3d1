/**
 * Pushing a function image of the local store to Amazon ECR, as SCAR's image mode does with Docker
 * (reference/scar-behaviour.md §5.3 step 4), without Docker:
 *
 * 1. the repository named after the function: DescribeRepositories, CreateRepository when missing
 *    (SCAR's `Creating ECR repository: <n>`); a name ECR would refuse is an error before any call;
 * 2. GetAuthorizationToken: base64 `AWS:<password>` for the registry at `proxyEndpoint`;
 * 3. the push itself over the distribution API with basic auth (src/engine/images/push.ts): blobs the
 *    repository has are skipped (HEAD), blobs scar pushed to another repository of the same registry
 *    are mounted (the push ledger), the rest uploaded. A second deploy after a script edit sends only
 *    scar's layer and the config.
 *
 * ECR mounts only when the registry's blob mounting is enabled (Amazon ECR User Guide, "Blob
 * mounting in Amazon ECR"); otherwise the mount POST opens an upload session and the blob goes up.
 * No permission (AccessDeniedException from ECR, 401/403 from the registry) is one clear line.
 */
import {
  CreateRepositoryCommand,
  DescribeImagesCommand,
  DescribeRepositoriesCommand,
  type ECRClient,
  GetAuthorizationTokenCommand,
} from "@aws-sdk/client-ecr";
import { StaticCredentials } from "../../engine/images/auth.js";
import type { ImageStore, PushEvent } from "../../engine/images/index.js";
import { pushImage } from "../../engine/images/push.js";
import { PushLedger } from "../../engine/images/push-ledger.js";
import { RegistryClient, RegistryError } from "../../engine/images/registry.js";
import { ImageNotFoundError } from "../../engine/images/store.js";
import type { PushedImage } from "./types.js";

export class EcrError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EcrError";
  }
}

/**
 * ECR's rule for repository names (CreateRepository, `repositoryName`): 2 to 256 characters,
 * lowercase letters and digits in parts joined by one `.`, `_` or `-`, and `/` between namespaces.
 */
const REPOSITORY_NAME = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

export function checkRepositoryName(name: string): void {
  if (name.length >= 2 && name.length <= 256 && REPOSITORY_NAME.test(name)) return;
  const why =
    name.length < 2 || name.length > 256
      ? "it must be 2 to 256 characters long"
      : /[A-Z]/.test(name)
        ? "ECR wants lowercase letters"
        : "ECR wants lowercase letters and digits, joined by single '.', '_' or '-'";
  throw new EcrError(
    `the function name '${name}' cannot name its ECR repository: ${why} (rename the function)`,
  );
}

/** The SDK's error name, or undefined for other errors. */
function awsErrorName(e: unknown): string | undefined {
  return e && typeof e === "object" && "name" in e && typeof e.name === "string" ? e.name : undefined;
}

function denied(what: string, e: unknown): EcrError | undefined {
  const name = awsErrorName(e);
  if (name !== "AccessDeniedException" && name !== "UnrecognizedClientException") return undefined;
  const detail = ((e as Error).message ?? "").split("\n")[0]!;
  return new EcrError(`no permission to ${what}: ${detail || name}`);
}

export interface EcrRepository {
  name: string;
  /** `<account>.dkr.ecr.<region>.amazonaws.com/<name>` */
  uri: string;
  registryId: string;
  created: boolean;
}

/** The repository named `name`, created when missing (SCAR's message goes to `say`). */
export async function ensureRepository(
  ecr: ECRClient,
  name: string,
  say: (line: string) => void = () => {},
): Promise<EcrRepository> {
  checkRepositoryName(name);
  try {
    const found = await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [name] }));
    const r = found.repositories?.[0];
    if (r?.repositoryUri && r.registryId)
      return { name, uri: r.repositoryUri, registryId: r.registryId, created: false };
  } catch (e) {
    if (awsErrorName(e) !== "RepositoryNotFoundException")
      throw denied(`read the ECR repository '${name}'`, e) ?? e;
  }
  say(`Creating ECR repository: ${name}`);
  try {
    const made = await ecr.send(new CreateRepositoryCommand({ repositoryName: name }));
    const r = made.repository;
    if (!r?.repositoryUri || !r.registryId)
      throw new EcrError(`ECR created the repository '${name}' but did not say its URI`);
    return { name, uri: r.repositoryUri, registryId: r.registryId, created: true };
  } catch (e) {
    throw denied(`create the ECR repository '${name}'`, e) ?? e;
  }
}

export interface RegistryLogin {
  /** `host[:port]` of the registry, from `proxyEndpoint` */
  registry: string;
  /** true when the endpoint is plain HTTP (a test registry) */
  plainHttp: boolean;
  username: string;
  password: string;
}

/** Credentials for the account's registry: GetAuthorizationToken, base64 `AWS:<password>`. */
export async function registryLogin(ecr: ECRClient): Promise<RegistryLogin> {
  let data: { authorizationToken?: string; proxyEndpoint?: string } | undefined;
  try {
    data = (await ecr.send(new GetAuthorizationTokenCommand({}))).authorizationData?.[0];
  } catch (e) {
    throw denied("get an ECR authorization token", e) ?? e;
  }
  if (!data?.authorizationToken || !data.proxyEndpoint)
    throw new EcrError("ECR returned no authorization token");
  const decoded = Buffer.from(data.authorizationToken, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon <= 0) throw new EcrError("the ECR authorization token is not 'user:password'");
  const endpoint = new URL(data.proxyEndpoint);
  return {
    registry: endpoint.host,
    plainHttp: endpoint.protocol === "http:",
    username: decoded.slice(0, colon),
    password: decoded.slice(colon + 1),
  };
}

export interface EcrPushInput {
  images: ImageStore;
  ecr: ECRClient;
  /** the image in the local store */
  ref: string;
  /** the repository (the function's name) */
  repository: string;
  tag?: string;
  /** SCAR's lines (`Creating ECR repository: …`, `Pushing new image to ECR ...`) */
  say?: (line: string) => void;
  onEvent?: (e: PushEvent) => void;
}

/** Pushes `ref` to the function's ECR repository; the URI pins the pushed digest. */
export async function pushToEcr(input: EcrPushInput): Promise<PushedImage> {
  const { images, ecr, repository } = input;
  checkRepositoryName(repository);
  const rec = images.find(input.ref);
  if (!rec) throw new ImageNotFoundError(input.ref);
  const repo = await ensureRepository(ecr, repository, input.say);
  const login = await registryLogin(ecr);
  const client = new RegistryClient({
    credentials: new StaticCredentials({
      [login.registry]: { username: login.username, password: login.password },
    }),
    insecure: login.plainHttp ? [login.registry] : [],
    userAgent: "scar",
  });
  const ledger = new PushLedger(images.store.root);
  input.say?.("Pushing new image to ECR ...");
  const target = `${login.registry}/${repository}:${input.tag ?? "latest"}`;
  let out: Awaited<ReturnType<typeof pushImage>>;
  try {
    // Always monolithic (POST, then one PUT with the blob): ECR answers intermediate PATCHes of a
    // chunked upload with 201 and drops the chunks after the first (aws/containers-roadmap#2831).
    out = await pushImage(images.store, client, input.ref, target, {
      blobSources: (digest) => ledger.sources(login.registry, digest),
      ...(input.onEvent ? { onProgress: input.onEvent } : {}),
    });
  } catch (e) {
    if (e instanceof RegistryError && (e.status === 401 || e.status === 403))
      throw new EcrError(
        `no permission to push to the ECR repository '${repository}' (${login.registry} answered ${e.status})`,
      );
    throw e;
  }
  ledger.record(login.registry, repository, [...rec.layers.map((l) => l.digest), rec.configDigest]);
  return {
    imageUri: `${repo.uri}@${out.digest}`,
    digest: out.digest,
    bytesUploaded: out.bytesUploaded,
    blobsSkipped: out.blobsSkipped,
    blobsMounted: out.blobsMounted,
  };
}

/** An image already in ECR (SCAR's `create_image: false`): its digest, or a clear error when missing. */
export async function describeEcrImage(
  ecr: ECRClient,
  image: { registryId: string; repository: string; tag: string },
): Promise<string> {
  try {
    const r = await ecr.send(
      new DescribeImagesCommand({
        registryId: image.registryId,
        repositoryName: image.repository,
        imageIds: [{ imageTag: image.tag }],
      }),
    );
    const digest = r.imageDetails?.[0]?.imageDigest;
    if (digest) return digest;
  } catch (e) {
    const name = awsErrorName(e);
    if (name !== "ImageNotFoundException" && name !== "RepositoryNotFoundException")
      throw denied(`read the ECR repository '${image.repository}'`, e) ?? e;
  }
  throw new EcrError(
    `the image ${image.repository}:${image.tag} is not in ECR (account ${image.registryId})`,
  );
}
