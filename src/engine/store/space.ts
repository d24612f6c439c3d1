/**
 * Free space: a reserve the store keeps free, so a filling disk refuses new uploads with an S3 error
 * while there is still room for the journal (deletes, acknowledgements, compaction), instead of
 * failing half-way through writes.
 */
import { statfs } from "node:fs/promises";
import { S3Error } from "./errors.js";

/** Bytes to keep free, or a share of the file system's size. */
export type SpaceReserve = { bytes: number } | { percent: number };

/** 64 MiB, or 1% of the file system when that is less (a small disk is not refused outright). */
export const DEFAULT_RESERVE_BYTES = 64 * 1024 * 1024;
const DEFAULT_RESERVE_PERCENT = 1;

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  ki: 1024,
  kib: 1024,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
};

/** Parses "64MiB", "512M", "1%", "0", a number of bytes. Throws a message naming the bad value. */
export function parseReserve(text: string | number): SpaceReserve {
  if (typeof text === "number") {
    if (!Number.isFinite(text) || text < 0) throw new Error(`invalid free-space reserve ${text}`);
    return { bytes: Math.floor(text) };
  }
  const t = text.trim().toLowerCase();
  const pct = /^(\d+(?:\.\d+)?)\s*%$/.exec(t);
  if (pct) {
    const percent = Number(pct[1]);
    if (percent >= 100) throw new Error(`invalid free-space reserve "${text}": a share must be under 100%`);
    return { percent };
  }
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(t);
  const unit = m ? UNITS[m[2]!] : undefined;
  if (!m || unit === undefined) {
    throw new Error(`invalid free-space reserve "${text}": give bytes (64MiB, 500M, 0) or a share (1%)`);
  }
  return { bytes: Math.floor(Number(m[1]) * unit) };
}

export interface SpaceInfo {
  /** Bytes an unprivileged writer may still use. */
  free: number;
  total: number;
  /** The reserve in bytes for this file system. */
  reserve: number;
}

export async function spaceInfo(dir: string, reserve: SpaceReserve | undefined): Promise<SpaceInfo> {
  const s = await statfs(dir);
  const total = s.blocks * s.bsize;
  const free = s.bavail * s.bsize;
  let bytes: number;
  if (reserve === undefined) bytes = Math.min(DEFAULT_RESERVE_BYTES, (total * DEFAULT_RESERVE_PERCENT) / 100);
  else if ("bytes" in reserve) bytes = reserve.bytes;
  else bytes = (total * reserve.percent) / 100;
  return { free, total, reserve: Math.floor(bytes) };
}

export function insufficientStorage(detail: string): S3Error {
  return new S3Error("InsufficientStorage", `The store does not have enough free space: ${detail}`);
}

export function isDiskFull(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}
