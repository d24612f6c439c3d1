/** The function's CloudWatch log group `/aws/lambda/<name>`: made with its retention, read, deleted. */
import {
  type CloudWatchLogsClient,
  CreateLogGroupCommand,
  DeleteLogGroupCommand,
  type FilteredLogEvent,
  FilterLogEventsCommand,
  PutRetentionPolicyCommand,
} from "@aws-sdk/client-cloudwatch-logs";
import { TargetError } from "../target-error.js";
import { errorName, isNotFound } from "./errors.js";

/** The values PutRetentionPolicy accepts. */
export const RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

export function logGroupName(fn: string): string {
  return `/aws/lambda/${fn}`;
}

export function checkRetention(days: unknown, fn: string): number {
  const n = Number(days ?? 30);
  if (!RETENTION_DAYS.includes(n))
    throw new TargetError(
      `function '${fn}': cloudwatch.log_retention_policy_in_days ${JSON.stringify(days)} is not a value CloudWatch Logs accepts`,
      `use one of ${RETENTION_DAYS.join(", ")}`,
    );
  return n;
}

/** Creates the group (true) or finds it made already (false), then sets its retention. */
export async function ensureLogGroup(
  logs: CloudWatchLogsClient,
  fn: string,
  tags: Record<string, string>,
  retentionDays: number,
): Promise<boolean> {
  const name = logGroupName(fn);
  let created = true;
  try {
    await logs.send(new CreateLogGroupCommand({ logGroupName: name, tags }));
  } catch (err) {
    if (errorName(err) !== "ResourceAlreadyExistsException") throw err;
    created = false;
  }
  await logs.send(new PutRetentionPolicyCommand({ logGroupName: name, retentionInDays: retentionDays }));
  return created;
}

export async function deleteLogGroup(logs: CloudWatchLogsClient, fn: string): Promise<boolean> {
  try {
    await logs.send(new DeleteLogGroupCommand({ logGroupName: logGroupName(fn) }));
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

export interface LogQuery {
  stream?: string;
  /** Only events after this time (ms since the epoch): `--follow` asks for what is new. */
  startTime?: number;
}

/** Every event of the group (or one stream), all pages, in time order. */
export async function readLogEvents(
  logs: CloudWatchLogsClient,
  group: string,
  q: LogQuery = {},
): Promise<FilteredLogEvent[]> {
  const events: FilteredLogEvent[] = [];
  let token: string | undefined;
  do {
    const page = await logs.send(
      new FilterLogEventsCommand({
        logGroupName: group,
        ...(q.stream ? { logStreamNames: [q.stream] } : {}),
        ...(q.startTime !== undefined ? { startTime: q.startTime } : {}),
        ...(token ? { nextToken: token } : {}),
      }),
    );
    events.push(...(page.events ?? []));
    token = page.nextToken;
  } while (token);
  return events.sort((a, b) => (a.timestamp ?? 0) - (b.timestamp ?? 0));
}

/**
 * SCAR's `-ri`: the lines from the START line naming the request to the REPORT line naming it (END
 * comes just before REPORT). Kept across reads, so that `log --follow -ri` finds a request whose
 * lines arrive in two polls: the START of one poll opens it, the REPORT of a later one closes it.
 * Once open, only the lines of the START's log stream count: a stream is one execution environment,
 * which runs one request at a time, while other streams' requests interleave in the group by time.
 */
export class RequestLines {
  private stream: string | undefined;
  private inside = false;

  constructor(private readonly requestId: string) {}

  /** The request's lines among these events (in time order), after those taken before. */
  take(events: readonly FilteredLogEvent[]): string {
    const out: string[] = [];
    for (const e of events) {
      if (this.inside && this.stream !== undefined && e.logStreamName !== this.stream) continue;
      const message = e.message ?? "";
      for (const line of (message.endsWith("\n") ? message : `${message}\n`).split(/(?<=\n)/)) {
        if (!this.inside && line.startsWith("START") && line.includes(this.requestId)) {
          this.inside = true;
          this.stream = e.logStreamName;
        }
        if (this.inside) out.push(line);
        if (this.inside && line.startsWith("REPORT") && line.includes(this.requestId)) this.inside = false;
      }
    }
    return out.join("");
  }
}
