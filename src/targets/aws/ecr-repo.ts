/** The function image's ECR repository, deleted by `rm` as `ecr.delete_image` says (SCAR's default: yes). */
import { DeleteRepositoryCommand, type ECRClient } from "@aws-sdk/client-ecr";
import { isNotFound } from "./errors.js";

/** `<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repo>[:tag|@digest]` -> `<repo>`; undefined for other registries. */
export function repositoryOf(imageUri: string): string | undefined {
  const m = /^[^/]+\.dkr\.ecr\.[^/]+\.amazonaws\.com(?:\.cn)?\/(.+)$/.exec(imageUri);
  if (!m) return undefined;
  return m[1]!.replace(/@sha256:[0-9a-f]+$/, "").replace(/:[^/:]+$/, "");
}

/** Deletes the repository and its images; false when it was gone already. */
export async function deleteRepository(ecr: ECRClient, repository: string): Promise<boolean> {
  try {
    await ecr.send(new DeleteRepositoryCommand({ repositoryName: repository, force: true }));
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}
