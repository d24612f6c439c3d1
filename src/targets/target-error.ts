/** A target-level failure said for the terminal: one line and a hint (kept apart so every target can throw it). */
export class TargetError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = "TargetError";
  }
}
