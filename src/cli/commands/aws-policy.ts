/**
 * `scar aws-policy`: the IAM policies the aws target needs, since SCAR's users often struggle with
 * them: the function's execution role (permissions and trust) and the deploying user. With
 * --role / --user / --trust it prints one document alone, ready for `aws iam put-role-policy`.
 */
import type { Command } from "commander";

type Flags = { role?: boolean; user?: boolean; trust?: boolean; batch?: boolean };

export function registerAwsPolicy(program: Command): void {
  program
    .command("aws-policy")
    .description("Print the IAM policies the aws target needs: the function's role and the deploying user")
    .option("--role", "only the execution role's permissions policy (JSON)")
    .option("--trust", "only the execution role's trust policy (JSON)")
    .option("--user", "only the deploying user's policy (JSON)")
    .option("--batch", "include what batch and lambda-batch functions need")
    .action(async (flags: Flags) => {
      const { rolePolicy, roleTrustPolicy, userPolicy } = await import("../../targets/aws/policy.js");
      const { loadConfig } = await import("../context.js");
      const configured = loadConfig().config.aws?.iam?.role;
      const scope = {
        ...(typeof configured === "string" && configured ? { role: configured } : {}),
        batch: Boolean(flags.batch),
      };
      const json = (d: unknown) => `${JSON.stringify(d, null, 2)}\n`;
      const only = [flags.role, flags.trust, flags.user].filter(Boolean).length;
      if (only > 1) {
        const { CliError } = await import("../errors.js");
        throw new CliError("give one of --role, --trust and --user (or none for all three)", 2);
      }
      if (flags.role) return void process.stdout.write(json(rolePolicy(scope)));
      if (flags.trust) return void process.stdout.write(json(roleTrustPolicy()));
      if (flags.user) return void process.stdout.write(json(userPolicy(scope)));
      process.stdout.write(
        `# The execution role (aws.iam.role in scar.cfg, or iam.role in the FDL): its permissions\n${json(rolePolicy(scope))}` +
          `\n# ... and its trust policy (Lambda assumes it)\n${json(roleTrustPolicy())}` +
          `\n# The user who runs scar (init, rm, ls, run, log, put, get)${scope.role ? `; PassRole limited to ${scope.role}` : ""}\n${json(userPolicy(scope))}`,
      );
    });
}
