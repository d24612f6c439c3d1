/** A failed object-store operation, said for the terminal (kept apart so the CLI can catch it without loading the AWS SDK). */
export class BucketError extends Error {}
