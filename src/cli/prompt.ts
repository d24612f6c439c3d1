/**
 * Questions on the terminal (the function chooser, SCAR's "launch over the input bucket?"). One
 * readline interface for the whole command, and answers typed ahead are kept for the next question
 * (a question-per-interface design loses them). main.ts closes it when the command ends.
 */
import { createInterface, type Interface } from "node:readline";
import { CliError } from "./errors.js";

let rl: Interface | undefined;
const typedAhead: string[] = [];
let waiting: ((line: string | undefined) => void) | undefined;
let closed = false;

export function interactive(): boolean {
  return process.stdin.isTTY === true && process.stderr.isTTY === true;
}

function open(): void {
  if (rl) return;
  rl = createInterface({ input: process.stdin, output: process.stderr });
  rl.on("line", (line) => {
    if (waiting) {
      const w = waiting;
      waiting = undefined;
      w(line);
    } else typedAhead.push(line);
  });
  rl.on("close", () => {
    closed = true;
    waiting?.(undefined);
    waiting = undefined;
  });
}

export async function ask(question: string): Promise<string> {
  open();
  process.stderr.write(question);
  const line =
    typedAhead.length > 0
      ? typedAhead.shift()
      : closed
        ? undefined
        : await new Promise<string | undefined>((resolve) => {
            waiting = resolve;
          });
  if (line === undefined) throw new CliError("no answer (the input ended); nothing was done", 1);
  return line.trim();
}

export function closePrompts(): void {
  rl?.close();
  rl = undefined;
}
