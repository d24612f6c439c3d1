/** The FDL library: read SCAR and OSCAR function definitions into normalized FunctionSpecs. */
export { FdlError, type FdlIssue, formatIssue, formatPath } from "./issues.js";
export { type LoadOptions, loadFdl, parseFdl } from "./load.js";
export type {
  ExecutionMode,
  FdlResult,
  FunctionSpec,
  OutputPath,
  StoragePath,
  StorageProviderSpec,
} from "./spec.js";
export { bucketNameError, notificationPrefix, parseStoragePath } from "./storage-path.js";
