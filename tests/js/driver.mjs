/**
 * What the one-command Node drivers (client.mjs, e2e.mjs) share: the protocol (one JSON command
 * in, one JSON line out, exit 0 when the scenario ran to its end, 1 when it threw, 2 for a bad
 * command), how they report an error and a replication, and the documents they generate.
 */

export function errorInfo(err) {
  if (!err || typeof err !== 'object') return { message: String(err) };
  const info = {};
  for (const key of ['name', 'status', 'error', 'reason', 'message', 'code', 'id']) {
    if (err[key] !== undefined) info[key] = err[key];
  }
  return info;
}

/** A PouchDB replication's result, as the Python side reads it. */
export function summary(result) {
  return {
    ok: result.ok,
    status: result.status,
    docs_read: result.docs_read,
    docs_written: result.docs_written,
    doc_write_failures: result.doc_write_failures,
    errors: (result.errors || []).map(errorInfo),
  };
}

export function generateDocs(count, { prefix = 'doc-', size = 64 } = {}) {
  const width = String(count).length;
  const filler = 'x'.repeat(size);
  return Array.from({ length: count }, (_, i) => ({
    _id: prefix + String(i).padStart(width, '0'),
    n: i,
    text: filler,
  }));
}

export async function bulkLoad(db, docs) {
  const results = await db.bulkDocs(docs);
  const failed = results.filter((r) => r.error);
  if (failed.length) throw new Error(`local bulkDocs failed: ${JSON.stringify(failed[0])}`);
}

/**
 * Read the command (`readCommand`), run it from `commands`, and `finish(output, exitCode)` with
 * its result or its error; `note` says on stderr how far it got.
 *
 * A rejection nobody handles is noted and kept in the output's `unhandled`, not fatal: PouchDB's
 * HTTP adapter leaves one behind when a live, retrying sync finds its server gone (a known
 * PouchDB behaviour), and a browser page, where these clients really live, carries on after one.
 * Node's default would end the driver mid-scenario instead.
 */
export async function runCommand(commands, { readCommand, finish, note }) {
  const unhandled = [];
  process.on('unhandledRejection', (err) => {
    note(`unhandled rejection: ${err && err.message}`);
    unhandled.push(errorInfo(err));
  });
  const finishWith = (output, code) => finish({ ...output, unhandled }, code);
  let cmd;
  try {
    cmd = await readCommand();
  } catch (err) {
    finishWith({ ok: false, error: { message: `bad command: ${err.message}` } }, 2);
    return;
  }
  const run = commands[cmd.command];
  if (!run) {
    finishWith({ ok: false, error: { message: `unknown command: ${cmd.command}` } }, 2);
    return;
  }
  note(`${cmd.command}: start`);
  try {
    finishWith({ ok: true, command: cmd.command, result: await run(cmd) }, 0);
  } catch (err) {
    note(`${cmd.command}: failed: ${err && err.stack}`);
    finishWith({ ok: false, command: cmd.command, error: errorInfo(err) }, 1);
  }
}
