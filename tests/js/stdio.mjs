// The drivers' line protocol on stdin and stdout (tests/pouch.py's PouchSession reads it): the
// command is stdin's first line, interactive commands read later ones, and say where they are
// with {"event": ...} lines on stdout.

import { createInterface } from 'node:readline';

let stdinLines = null;

export async function nextLine() {
  stdinLines ??= createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const { value, done } = await stdinLines.next();
  return done ? null : value;
}

export function emit(event, data = {}) {
  process.stdout.write(JSON.stringify({ event, ...data }) + '\n');
}

/** The command: stdin's first line, as JSON. */
export async function readCommand() {
  const line = await nextLine();
  if (line === null) throw new Error('no command on stdin');
  return JSON.parse(line);
}
