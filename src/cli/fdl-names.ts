/**
 * The function names of an FDL, and nothing else. `scar rm -f` needs only those: a definition
 * whose script, image file or values are no longer valid must still be removable, so this does not
 * run the FDL pipeline (which checks every file and value) but reads the names where SCAR writes
 * them: `functions.aws[].lambda.name`, the `name` of `functions.oscar[]` services, and the keys of
 * SCAR 2.x/3.x's map of functions.
 */
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { isLegacyFunctions } from "../fdl/legacy.js";
import { CliError } from "./errors.js";

const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

export function fdlFunctionNames(file: string): string[] {
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, "utf8"));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === "ENOENT" ? "file not found" : e.code === "EISDIR" ? "this is a folder" : e.message;
    throw new CliError(`cannot read the FDL file ${file}: ${why}`);
  }
  const functions = isMap(doc) ? doc.functions : undefined;
  if (isLegacyFunctions(functions)) return Object.keys(functions);
  const names: string[] = [];
  const unnamed: string[] = [];
  if (isMap(functions)) {
    const aws = Array.isArray(functions.aws) ? functions.aws : [];
    aws.forEach((item, i) => {
      const name = isMap(item) && isMap(item.lambda) ? item.lambda.name : undefined;
      if (typeof name === "string" && name) names.push(name);
      else unnamed.push(`functions.aws[${i}]`);
    });
    const oscar = Array.isArray(functions.oscar) ? functions.oscar : [];
    oscar.forEach((item, i) => {
      // each item is {<cluster>: service}
      for (const [cluster, svc] of Object.entries(isMap(item) ? item : {})) {
        const name = isMap(svc) ? svc.name : undefined;
        if (typeof name === "string" && name) names.push(name);
        else unnamed.push(`functions.oscar[${i}].${cluster}`);
      }
    });
  }
  if (unnamed.length > 0)
    throw new CliError(
      `${file}: ${unnamed.join(", ")} ${unnamed.length === 1 ? "has" : "have"} no name; nothing was deleted`,
      1,
      "delete functions by name with 'scar rm -n NAME' (see them with 'scar ls')",
    );
  if (names.length === 0) throw new CliError(`${file} defines no function; nothing was deleted`);
  return [...new Set(names)];
}
