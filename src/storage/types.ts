/**
 * A place files are staged from and to: S3, MinIO, the embedded store (all three through the S3
 * API), later Onedata, WebDAV and Rucio. The supervisor only ever moves whole files through it.
 */
export interface StorageProvider {
  /** Canonical `<type>.<id>`, e.g. `s3.default`. */
  readonly id: string;
  /** Writes the object to `destFile` (created or replaced). */
  download(bucket: string, key: string, destFile: string, opts?: DownloadOptions): Promise<void>;
  /** Uploads `srcFile` as `key` in `bucket`. */
  upload(srcFile: string, bucket: string, key: string, opts?: UploadOptions): Promise<void>;
}

export interface DownloadOptions {
  /**
   * Nothing will ever write to `destFile` in place (only read, replace or remove it): a provider
   * whose objects are files on this machine may hard-link the object there instead of copying it.
   */
  mayLink?: boolean;
}

export interface UploadOptions {
  /**
   * `srcFile` is not needed after the upload: a provider whose objects are files on the same file
   * system may take the file itself (rename it into place) instead of copying it.
   */
  consume?: boolean;
}

/** Finds the provider for a canonical id; throws StorageError when there is none. */
export type StorageResolver = (id: string) => StorageProvider;

export class StorageError extends Error {
  constructor(
    message: string,
    readonly provider: string,
    /** `cause`: the error underneath (a file system error keeps its code there: ENOSPC, ...) */
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "StorageError";
  }
}
