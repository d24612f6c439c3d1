/**
 * Bucket notification configuration (Put/GetBucketNotificationConfiguration) and the S3 event
 * records built for it. Validation follows S3: known event types, at most one prefix and one suffix
 * rule, unique ids, and no two configurations that could both fire for one object and event type.
 */
import { randomUUID } from "node:crypto";
import { S3Error } from "./errors.js";
import { uriEncode } from "./sigv4.js";
import { asNode, children, parseXml, text, type XmlObject, xmlDocument } from "./xml.js";

export type DestinationKind = "Lambda" | "Queue" | "Topic";

export interface NotificationRule {
  id: string;
  kind: DestinationKind;
  arn: string;
  events: string[];
  /** Filter rules as sent (name keeps its case for round trips). */
  filters: { name: string; value: string }[];
}

export interface NotificationConfig {
  rules: NotificationRule[];
  eventBridge: boolean;
}

const KNOWN_EVENTS = new Set(
  [
    "ObjectCreated:*",
    "ObjectCreated:Put",
    "ObjectCreated:Post",
    "ObjectCreated:Copy",
    "ObjectCreated:CompleteMultipartUpload",
    "ObjectRemoved:*",
    "ObjectRemoved:Delete",
    "ObjectRemoved:DeleteMarkerCreated",
    "ObjectRestore:*",
    "ObjectRestore:Post",
    "ObjectRestore:Completed",
    "ObjectRestore:Delete",
    "ReducedRedundancyLostObject",
    "Replication:*",
    "Replication:OperationFailedReplication",
    "Replication:OperationMissedThreshold",
    "Replication:OperationReplicatedAfterThreshold",
    "Replication:OperationNotTracked",
    "LifecycleExpiration:*",
    "LifecycleExpiration:Delete",
    "LifecycleExpiration:DeleteMarkerCreated",
    "LifecycleTransition",
    "IntelligentTiering",
    "ObjectTagging:*",
    "ObjectTagging:Put",
    "ObjectTagging:Delete",
    "ObjectAcl:Put",
  ].map((e) => `s3:${e}`),
);

const ELEMENTS: Record<DestinationKind, [string, string]> = {
  Lambda: ["CloudFunctionConfiguration", "CloudFunction"],
  Queue: ["QueueConfiguration", "Queue"],
  Topic: ["TopicConfiguration", "Topic"],
};

function invalid(message: string, name: string, value: string): S3Error {
  return new S3Error("InvalidArgument", message, { ArgumentName: name, ArgumentValue: value });
}

/** Does the event pattern (possibly ending in :*) cover the concrete or wildcard event `e`? */
function covers(pattern: string, e: string): boolean {
  if (pattern === e) return true;
  return pattern.endsWith(":*") && e.startsWith(pattern.slice(0, -1));
}

function eventsIntersect(a: string[], b: string[]): boolean {
  return a.some((x) => b.some((y) => covers(x, y) || covers(y, x)));
}

function filterValue(rule: NotificationRule, name: "prefix" | "suffix"): string {
  return rule.filters.find((f) => f.name.toLowerCase() === name)?.value ?? "";
}

export function parseNotificationConfig(xml: string): NotificationConfig {
  const root = parseXml(xml, "NotificationConfiguration");
  const rules: NotificationRule[] = [];
  for (const kind of Object.keys(ELEMENTS) as DestinationKind[]) {
    const [element, arnElement] = ELEMENTS[kind];
    // S3 also accepts the Lambda element name LambdaFunctionConfiguration as the JSON API calls it.
    const nodes = [
      ...children(root, element),
      ...(kind === "Lambda" ? children(root, "LambdaFunctionConfiguration") : []),
    ];
    for (const raw of nodes) {
      const node = asNode(raw);
      const arn = text(node, arnElement) ?? text(node, "LambdaFunctionArn") ?? text(node, `${arnElement}Arn`);
      if (!arn) throw new S3Error("MalformedXML");
      if (!/^arn:[^:]+:[^:]+:[^:]*:[^:]*:.+$/.test(arn))
        throw invalid("The ARN is not well formed", arnElement, arn);
      const events = children(node, "Event").map((e) => (typeof e === "string" ? e : ""));
      if (events.length === 0) throw new S3Error("MalformedXML");
      for (const e of events) {
        if (!KNOWN_EVENTS.has(e)) throw invalid("The event is not supported for notifications", "Event", e);
      }
      const filters: { name: string; value: string }[] = [];
      const filter = node.Filter === undefined ? undefined : asNode(node.Filter);
      if (filter) {
        const s3key = filter.S3Key === undefined ? {} : asNode(filter.S3Key);
        for (const fr of children(s3key, "FilterRule")) {
          const f = asNode(fr);
          const name = text(f, "Name") ?? "";
          const value = text(f, "Value") ?? "";
          const lower = name.toLowerCase();
          if (lower !== "prefix" && lower !== "suffix") {
            throw invalid("filter rule name must be either prefix or suffix", "FilterRule", name);
          }
          if (filters.some((x) => x.name.toLowerCase() === lower)) {
            throw invalid(`Cannot specify more than one ${lower} rule in a filter.`, "FilterRule", name);
          }
          filters.push({ name, value });
        }
      }
      rules.push({ id: text(node, "Id") || randomUUID(), kind, arn, events, filters });
    }
  }
  const ids = new Set<string>();
  for (const r of rules) {
    if (ids.has(r.id)) throw invalid("Same ID used for multiple configurations", "Id", r.id);
    ids.add(r.id);
  }
  for (let i = 0; i < rules.length; i++) {
    for (let j = i + 1; j < rules.length; j++) {
      const a = rules[i]!;
      const b = rules[j]!;
      const pa = filterValue(a, "prefix");
      const pb = filterValue(b, "prefix");
      const sa = filterValue(a, "suffix");
      const sb = filterValue(b, "suffix");
      if (
        eventsIntersect(a.events, b.events) &&
        (pa.startsWith(pb) || pb.startsWith(pa)) &&
        (sa.endsWith(sb) || sb.endsWith(sa))
      ) {
        throw invalid(
          "Configurations overlap. Configurations on the same bucket cannot share a common event type.",
          "Event",
          b.events.join(","),
        );
      }
    }
  }
  return { rules, eventBridge: root.EventBridgeConfiguration !== undefined };
}

export function notificationConfigXml(cfg: NotificationConfig | null): string {
  const body: XmlObject = {};
  for (const kind of ["Topic", "Queue", "Lambda"] as DestinationKind[]) {
    const [element, arnElement] = ELEMENTS[kind];
    const list = (cfg?.rules ?? [])
      .filter((r) => r.kind === kind)
      .map(
        (r): XmlObject => ({
          Id: r.id,
          [arnElement]: r.arn,
          Event: r.events,
          Filter: r.filters.length
            ? { S3Key: { FilterRule: r.filters.map((f) => ({ Name: f.name, Value: f.value })) } }
            : undefined,
        }),
      );
    if (list.length) body[element] = list;
  }
  if (cfg?.eventBridge) body.EventBridgeConfiguration = "";
  return xmlDocument("NotificationConfiguration", body);
}

/** The rules that fire for this event name ("s3:ObjectCreated:Put") on this key. */
export function matchingRules(
  cfg: NotificationConfig | null,
  eventName: string,
  key: string,
): NotificationRule[] {
  if (!cfg) return [];
  return cfg.rules.filter(
    (r) =>
      r.events.some((p) => covers(p, eventName)) &&
      key.startsWith(filterValue(r, "prefix")) &&
      key.endsWith(filterValue(r, "suffix")),
  );
}

/** Keys in event records are URL-encoded as S3 does it: '/' kept, space as '+'. */
export function eventKey(key: string): string {
  return uriEncode(key, true).replace(/%20/g, "+");
}

export interface S3EventRecord {
  eventVersion: string;
  eventSource: string;
  awsRegion: string;
  eventTime: string;
  eventName: string;
  userIdentity: { principalId: string };
  requestParameters: { sourceIPAddress: string };
  responseElements: { "x-amz-request-id": string; "x-amz-id-2": string };
  s3: {
    s3SchemaVersion: string;
    configurationId: string;
    bucket: { name: string; ownerIdentity: { principalId: string }; arn: string };
    object: { key: string; size?: number; eTag?: string; sequencer: string };
  };
}

export interface RecordInput {
  region: string;
  eventName: string;
  time: Date;
  principal: string;
  sourceIp: string;
  requestId: string;
  configurationId: string;
  bucket: string;
  key: string;
  size?: number;
  etag?: string;
  sequencer: string;
}

export function buildRecord(i: RecordInput): S3EventRecord {
  const object: S3EventRecord["s3"]["object"] = { key: eventKey(i.key), sequencer: i.sequencer };
  if (i.size !== undefined) object.size = i.size;
  if (i.etag !== undefined) object.eTag = i.etag;
  return {
    eventVersion: "2.1",
    eventSource: "aws:s3",
    awsRegion: i.region,
    eventTime: i.time.toISOString(),
    eventName: i.eventName,
    userIdentity: { principalId: i.principal },
    requestParameters: { sourceIPAddress: i.sourceIp },
    responseElements: { "x-amz-request-id": i.requestId, "x-amz-id-2": i.requestId },
    s3: {
      s3SchemaVersion: "1.0",
      configurationId: i.configurationId,
      bucket: {
        name: i.bucket,
        ownerIdentity: { principalId: i.principal },
        arn: `arn:aws:s3:::${i.bucket}`,
      },
      object,
    },
  };
}
