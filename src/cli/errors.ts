/**
 * An error meant for the person at the terminal: printed as is (no stack trace), with an optional
 * hint saying what to do, and a non-zero exit code.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    readonly hint?: string,
  ) {
    super(message);
    this.name = "CliError";
  }
}
