/** Polling for tests that wait on something another process does in its own time. */

/**
 * Call `probe` every 25 ms until it returns something other than `undefined` or `false`, and return
 * that. Fails with `what` once `timeoutMs` has passed.
 */
export async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
