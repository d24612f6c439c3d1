/**
 * The upload event an OSCAR service gets, in MinIO's shape (what OSCAR's MinIO webhook sends and its
 * supervisor reads): the S3 record with `eventSource: "minio:s3"`, `requestParameters.principalId`
 * and `userMetadata`, wrapped with MinIO's top-level `EventName` and `Key` (`bucket/key`, not
 * URL-encoded). Scripts written for OSCAR read these (e.g. `jq .Key "$EVENT"`). SCAR-shaped (aws)
 * functions keep S3's event.
 */
import type { S3EventRecord } from "./store/index.js";

export interface MinioEvent {
  EventName: string;
  Key: string;
  Records: Record<string, unknown>[];
}

export function minioEvent(record: S3EventRecord, bucket: string, key: string): MinioEvent {
  const principal = record.userIdentity.principalId;
  return {
    EventName: record.eventName,
    Key: `${bucket}/${key}`,
    Records: [
      {
        ...record,
        eventVersion: "2.0",
        eventSource: "minio:s3",
        requestParameters: {
          principalId: principal,
          region: record.awsRegion,
          sourceIPAddress: record.requestParameters.sourceIPAddress,
        },
        s3: { ...record.s3, object: { ...record.s3.object, userMetadata: {} } },
      },
    ],
  };
}
