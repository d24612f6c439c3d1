/**
 * The seam between the function image (issue 15) and the AWS target (issue 16).
 *
 * The function image is the user's image plus one layer of scar's runtime (src/lambda), built
 * without Docker into the local image store, then pushed to ECR. The AWS target only sees
 * `FunctionImagePublisher`: tests give it a fake; the real one is the builder followed by the push.
 */
import type { ImageStore } from "../../engine/images/index.js";
import type { FunctionSpec, StorageProviderSpec } from "../../fdl/spec.js";

/** Where the user's image comes from (SCAR's `container.image`, `container.image_file`). */
export type ImageSource =
  /** a reference pulled from its registry (or already in the local store under that name) */
  | { kind: "registry"; reference: string }
  /** an image archive (`docker save` or OCI layout tar) named by `container.image_file` */
  | { kind: "file"; path: string };

export interface BuildProgress {
  stage: "pull" | "layer" | "config" | "done";
  detail?: string;
}

export interface BuildFunctionImageInput {
  spec: FunctionSpec;
  storageProviders: Record<string, StorageProviderSpec>;
  source: ImageSource;
  images: ImageStore;
  /** the name the built image gets in the local store, e.g. `scar-lambda/<function>:latest` */
  tag: string;
  onProgress?: (p: BuildProgress) => void;
}

export interface BuiltFunctionImage {
  /** the local store name given as `tag` */
  reference: string;
  /** manifest digest, `sha256:…`: the same inputs give the same digest */
  digest: string;
  /** the layer scar added (compressed size, bytes) */
  layerBytes: number;
  /** the whole image, compressed (Lambda's limit applies to the uncompressed size) */
  compressedBytes: number;
  uncompressedBytes: number;
}

export interface PushProgress {
  blob: string;
  done: number;
  total: number;
}

export interface PushedImage {
  /** `<account>.dkr.ecr.<region>.amazonaws.com/<repo>@sha256:…` (or `:tag`) as Lambda's ImageUri wants it */
  imageUri: string;
  digest: string;
  /** bytes sent to the registry (0 for blobs it had or mounted) */
  bytesUploaded: number;
  blobsSkipped: number;
  blobsMounted: number;
}

/** What the AWS target calls at `init` / `update`: an ImageUri for CreateFunction. */
export interface FunctionImagePublisher {
  publish(
    spec: FunctionSpec,
    storageProviders: Record<string, StorageProviderSpec>,
    opts: { region: string; onProgress?: (line: string) => void },
  ): Promise<PushedImage>;
}
