/** The embedded S3-compatible object store. See README.md in this folder. */
export type { CommitHook, EventListener, ObjectMeta, StoreEvent } from "./backend.js";
export type { S3EventRecord } from "./notifications.js";
export {
  DEFAULT_CREDENTIALS,
  type RunningStore,
  type StoreCredentials,
  type StoreOptions,
  startStore,
} from "./server.js";
