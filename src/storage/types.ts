/**
 * A place files are staged from and to: S3, MinIO, the embedded store (all three through the S3
 * API), later Onedata, WebDAV and Rucio. The supervisor only ever moves whole files through it.
 */
export interface StorageProvider {
  /** Canonical `<type>.<id>`, e.g. `s3.default`. */
  readonly id: string;
  /** Writes the object to `destFile` (created or replaced). */
  download(bucket: string, key: string, destFile: string): Promise<void>;
  /** Uploads `srcFile` as `key` in `bucket`. */
  upload(srcFile: string, bucket: string, key: string): Promise<void>;
}

/** Finds the provider for a canonical id; throws StorageError when there is none. */
export type StorageResolver = (id: string) => StorageProvider;

export class StorageError extends Error {
  constructor(
    message: string,
    readonly provider: string,
  ) {
    super(message);
    this.name = "StorageError";
  }
}
