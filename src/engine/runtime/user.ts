/**
 * Resolves an image's `User` ("name", "uid", "name:group", "uid:gid") to numeric ids, reading
 * /etc/passwd and /etc/group from the image layers (the topmost layer that has the file wins, as in
 * the merged root file system).
 */
import { lstatSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  /** home directory from /etc/passwd, when known */
  home?: string;
}

export class UserError extends Error {}

/** Contents of `rel` in the merged view of `layers` (bottom to top), or undefined. */
export function readFromLayers(layers: readonly string[], rel: string): string | undefined {
  for (let i = layers.length - 1; i >= 0; i--) {
    const p = join(layers[i]!, rel);
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    if (st.isCharacterDevice() && st.rdev === 0) return undefined; // whiteout: deleted in this layer
    if (!st.isFile()) return undefined;
    return readFileSync(p, "utf8");
  }
  return undefined;
}

function parseDb(text: string | undefined): string[][] {
  if (!text) return [];
  return text
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.startsWith("#"))
    .map((l) => l.split(":"));
}

const isId = (s: string) => /^\d+$/.test(s);

export function resolveUser(spec: string | undefined, layers: readonly string[]): ResolvedUser {
  const s = (spec ?? "").trim();
  if (s === "") return { uid: 0, gid: 0, additionalGids: [], home: "/root" };
  const [userPart, groupPart] = s.split(":", 2) as [string, string | undefined];
  let passwd: string[][] | undefined;
  const pw = () => {
    passwd ??= parseDb(readFromLayers(layers, "etc/passwd"));
    return passwd;
  };
  let uid: number;
  let gid: number | undefined;
  let home: string | undefined;
  let name: string | undefined;
  if (isId(userPart)) {
    uid = Number(userPart);
    const e = pw().find((r) => r[2] === userPart);
    if (e) {
      gid = Number(e[3]);
      home = e[5];
      name = e[0];
    }
  } else {
    const e = pw().find((r) => r[0] === userPart);
    if (!e) throw new UserError(`user "${userPart}" not found in the image's /etc/passwd`);
    uid = Number(e[2]);
    gid = Number(e[3]);
    home = e[5];
    name = e[0];
  }
  const groups = parseDb(readFromLayers(layers, "etc/group"));
  if (groupPart !== undefined && groupPart !== "") {
    if (isId(groupPart)) gid = Number(groupPart);
    else {
      const g = groups.find((r) => r[0] === groupPart);
      if (!g) throw new UserError(`group "${groupPart}" not found in the image's /etc/group`);
      gid = Number(g[2]);
    }
  }
  gid ??= 0;
  const additionalGids =
    name === undefined || groupPart
      ? []
      : groups
          .filter((g) => (g[3] ?? "").split(",").includes(name!) && Number(g[2]) !== gid)
          .map((g) => Number(g[2]));
  return { uid, gid, additionalGids, home: home || (uid === 0 ? "/root" : "/") };
}
