/**
 * Which repositories scar pushed each blob to, per registry (`<store>/pushed.json`), so that a push
 * of the same blob into another repository of the same registry can mount it instead of uploading
 * it again (a second function built on the same base image sends only its own layer).
 *
 * It is a hint, never the truth: a repository deleted since, or a registry that does not mount,
 * makes the mount fail and the push uploads the blob as usual. So a lost update (two pushes writing
 * at once) costs an upload at worst, and the file is rewritten whole through a rename.
 */
import * as fs from "node:fs";
import { join } from "node:path";

/** At most this many repositories are remembered per blob (the latest ones). */
const MAX_REPOS_PER_BLOB = 8;

type Ledger = Record<string, Record<string, string[]>>;

export class PushLedger {
  private readonly path: string;

  /** `root` is the image store's folder (ContentStore.root). */
  constructor(root: string) {
    this.path = join(root, "pushed.json");
  }

  private read(): Ledger {
    try {
      const j = JSON.parse(fs.readFileSync(this.path, "utf8")) as unknown;
      return j && typeof j === "object" && !Array.isArray(j) ? (j as Ledger) : {};
    } catch {
      return {}; // missing or unreadable: no hints, every blob is checked and uploaded as needed
    }
  }

  /** `registry/repo` names known to hold `digest` on `registry`, latest first. */
  sources(registry: string, digest: string): string[] {
    const repos = this.read()[registry]?.[digest];
    return Array.isArray(repos) ? repos.map((r) => `${registry}/${r}`) : [];
  }

  /** Remembers that `repository` on `registry` now holds these blobs. */
  record(registry: string, repository: string, digests: string[]): void {
    const ledger = this.read();
    const reg = ledger[registry] ?? {};
    ledger[registry] = reg;
    for (const d of digests) {
      const repos = (reg[d] ?? []).filter((r) => r !== repository);
      reg[d] = [repository, ...repos].slice(0, MAX_REPOS_PER_BLOB);
    }
    const tmp = `${this.path}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(ledger), { mode: 0o600 });
    fs.renameSync(tmp, this.path);
  }
}
