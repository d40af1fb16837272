/**
 * Waiting helpers shared by the Node drivers (client.mjs, e2e.mjs): poll a condition with a
 * bound, and ask whether a database holds a document (at a given revision).
 */

export function waitUntil(predicate, timeoutMs, intervalMs = 25) {
  const start = performance.now();
  return new Promise((resolve) => {
    const tick = async () => {
      let done = false;
      try {
        done = await predicate();
      } catch {
        done = false;
      }
      const ms = performance.now() - start;
      if (done) resolve({ ok: true, ms });
      else if (ms > timeoutMs) resolve({ ok: false, ms });
      else setTimeout(tick, intervalMs);
    };
    tick();
  });
}

export async function hasRev(db, docId, rev) {
  try {
    const doc = await db.get(docId);
    return rev === undefined || doc._rev === rev;
  } catch (err) {
    if (err.status === 404) return false;
    throw err;
  }
}
