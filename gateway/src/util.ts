/**
 * Small helpers shared by the modules: joining bytes, reading a body under a size cap, bounded
 * concurrency and error text. Nothing here knows about git, KV or the API.
 *
 * @module
 */

/** Joins byte arrays into one. */
export function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Reads a whole body, refusing (with {@link TooLarge}) once it passes `max` bytes. */
export async function readAtMost(
  body: ReadableStream<Uint8Array> | null,
  max: number,
): Promise<Uint8Array> {
  if (!body) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  let n = 0;
  const reader = body.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.length;
      if (n > max) {
        await reader.cancel();
        throw new TooLarge(max);
      }
      parts.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return concat(parts);
}

/** A body longer than allowed. */
export class TooLarge extends Error {
  override name = "TooLarge";
  constructor(readonly max: number) {
    super(`the body is larger than ${max} bytes`);
  }
}

/** Runs `f` over `items` with at most `limit` calls in flight. */
export async function eachLimited<T>(
  items: T[],
  limit: number,
  f: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      await f(item);
    }
  });
  await Promise.all(workers);
}

/** An error's message, for text that names a cause. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
