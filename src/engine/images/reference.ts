/**
 * Image references as Docker users write them: `busybox`, `grycap/cowsay:1.0`, `localhost:5000/x@sha256:…`,
 * `ghcr.io/org/app:tag@sha256:…`. Parsing follows the rules of Docker's reference grammar and its
 * normalisation: a first component with a `.` or `:`, or `localhost`, or an upper-case letter is a
 * registry; anything else lives on Docker Hub (`docker.io`), where one-component names get `library/`.
 */

export const DEFAULT_REGISTRY = "docker.io";
export const DEFAULT_TAG = "latest";

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const NAME_MAX = 255;

export class ImageReferenceError extends Error {
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super(`invalid image reference "${input}": ${reason}`);
    this.name = "ImageReferenceError";
  }
}

export interface ImageReference {
  /** registry host, with a port when one was given: `docker.io`, `localhost:5000`, `[::1]:5000` */
  registry: string;
  /** repository path inside the registry: `library/busybox`, `grycap/cowsay` */
  repository: string;
  /** the tag, `latest` when neither a tag nor a digest was given; undefined for digest-only references */
  tag?: string;
  /** `sha256:<hex>` when the reference pins a digest */
  digest?: string;
}

function validDomain(domain: string): boolean {
  let host = domain;
  let port: string | undefined;
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    if (end < 0) return false;
    const inner = host.slice(1, end);
    if (!/^[0-9a-fA-F:.]+$/.test(inner) || !inner.includes(":")) return false;
    const rest = host.slice(end + 1);
    if (rest === "") return true;
    if (!rest.startsWith(":")) return false;
    port = rest.slice(1);
    host = "";
  } else {
    const colon = host.lastIndexOf(":");
    if (colon >= 0) {
      port = host.slice(colon + 1);
      host = host.slice(0, colon);
    }
  }
  if (port !== undefined && !/^[0-9]{1,5}$/.test(port)) return false;
  if (host === "") return port !== undefined && domain.startsWith("[");
  return host.split(".").every((c) => DOMAIN_COMPONENT.test(c));
}

/** Parses a reference and normalises it the way `docker pull` does. Throws ReferenceError. */
export function parseReference(input: string): ImageReference {
  const s = input.trim();
  if (s === "") throw new ImageReferenceError(input, "empty");
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new ImageReferenceError(input, `bad digest "${digest}"`);
    const [alg, hex] = digest.split(":") as [string, string];
    if (alg === "sha256" && !/^[a-f0-9]{64}$/.test(hex))
      throw new ImageReferenceError(input, "a sha256 digest has 64 lower-case hex digits");
    if (alg === "sha512" && !/^[a-f0-9]{128}$/.test(hex))
      throw new ImageReferenceError(input, "a sha512 digest has 128 lower-case hex digits");
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new ImageReferenceError(input, `bad tag "${tag}"`);
  }
  if (rest === "") throw new ImageReferenceError(input, "no repository name");
  if (rest.length > NAME_MAX)
    throw new ImageReferenceError(input, `the name is longer than ${NAME_MAX} characters`);

  let registry = DEFAULT_REGISTRY;
  let path = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (/[.:]/.test(first) || first === "localhost" || first.toLowerCase() !== first) {
      registry = first;
      path = rest.slice(slash + 1);
      if (!validDomain(registry)) throw new ImageReferenceError(input, `bad registry "${registry}"`);
    }
  }
  if (registry === "index.docker.io" || registry === "registry-1.docker.io") registry = DEFAULT_REGISTRY;
  if (registry === DEFAULT_REGISTRY && !path.includes("/")) path = `library/${path}`;
  for (const comp of path.split("/")) {
    if (!PATH_COMPONENT.test(comp)) {
      if (comp.toLowerCase() !== comp && PATH_COMPONENT.test(comp.toLowerCase()))
        throw new ImageReferenceError(input, "repository names must be lower-case");
      throw new ImageReferenceError(input, `bad path component "${comp}"`);
    }
  }
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  const ref: ImageReference = { registry, repository: path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** The fully qualified name: `docker.io/library/busybox:latest`, `localhost:5000/x@sha256:…`. */
export function formatReference(ref: ImageReference): string {
  let s = `${ref.registry}/${ref.repository}`;
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** The short form Docker prints: `busybox:latest`, `grycap/cowsay:1.0`, `localhost:5000/x:1`. */
export function familiarName(ref: ImageReference): string {
  let name = `${ref.registry}/${ref.repository}`;
  if (ref.registry === DEFAULT_REGISTRY) {
    name = ref.repository.startsWith("library/") ? ref.repository.slice(8) : ref.repository;
  }
  if (ref.tag !== undefined) name += `:${ref.tag}`;
  if (ref.digest !== undefined) name += `@${ref.digest}`;
  return name;
}

/** `registry/repository` without tag or digest. */
export function repositoryName(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The base URL of the registry's API host (Docker Hub's API lives on registry-1.docker.io). */
export function registryHost(registry: string): string {
  return registry === DEFAULT_REGISTRY ? "registry-1.docker.io" : registry;
}

/** True for registries on the loopback interface, which may be spoken to over plain HTTP. */
export function isLoopbackRegistry(registry: string): boolean {
  let host = registry;
  if (host.startsWith("[")) host = host.slice(1, host.indexOf("]"));
  else if (host.includes(":")) host = host.slice(0, host.lastIndexOf(":"));
  host = host.toLowerCase();
  return (
    host === "localhost" ||
    host === "::1" ||
    /^127(?:\.\d{1,3}){3}$/.test(host) ||
    host.endsWith(".localhost")
  );
}
