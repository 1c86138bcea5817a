/**
 * Writes a version 2 pack without deltas (gitformat-pack): the `PACK` header with the object
 * count, each object as its type-and-size header followed by its zlib stream, and the SHA-1 of
 * everything before as trailer. Objects arrive already deflated; it never reads storage itself.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { PACK_TYPE } from "./objects.ts";
import type { ObjectType } from "./objects.ts";

/** One object as a pack entry. */
export interface PackEntry {
  /** Its type. */
  type: ObjectType;
  /** Its uncompressed size in bytes. */
  size: number;
  /** Its content as one zlib stream (RFC 1950). */
  zlib: Uint8Array;
}

/** The 12-byte pack header for `count` objects. */
export function packHeader(count: number): Uint8Array {
  const out = new Uint8Array(12);
  out.set([0x50, 0x41, 0x43, 0x4b]); // "PACK"
  const view = new DataView(out.buffer);
  view.setUint32(4, 2);
  view.setUint32(8, count);
  return out;
}

/**
 * An entry's header: the type in bits 4-6 of the first byte, the size in little-endian groups
 * (4 bits, then 7 bits a byte), the top bit saying another byte follows.
 */
export function entryHeader(type: ObjectType, size: number): Uint8Array {
  const bytes: number[] = [];
  let rest = Math.floor(size / 16);
  let byte = (PACK_TYPE[type] << 4) | (size % 16);
  while (rest > 0) {
    bytes.push(byte | 0x80);
    byte = rest % 128;
    rest = Math.floor(rest / 128);
  }
  bytes.push(byte);
  return new Uint8Array(bytes);
}

/**
 * A stream of the pack holding exactly `count` entries pulled from `entries`. It errors if the
 * source yields more or fewer, since the header already promised the count.
 */
export function packStream(
  count: number,
  entries: AsyncIterable<PackEntry>,
): ReadableStream<Uint8Array> {
  const hash = createHash("sha1");
  const iterator = entries[Symbol.asyncIterator]();
  let sent = 0;
  let phase: "header" | "objects" | "done" = "header";
  const emit = (controller: ReadableStreamDefaultController<Uint8Array>, bytes: Uint8Array) => {
    hash.update(bytes);
    controller.enqueue(bytes);
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (phase === "header") {
        emit(controller, packHeader(count));
        phase = "objects";
        return;
      }
      if (phase === "done") return;
      const next = await iterator.next();
      if (next.done) {
        if (sent !== count) {
          controller.error(new Error(`the pack promised ${count} objects but got ${sent}`));
          return;
        }
        controller.enqueue(new Uint8Array(hash.digest()));
        phase = "done";
        controller.close();
        return;
      }
      sent++;
      if (sent > count) {
        controller.error(new Error(`the pack promised ${count} objects but got more`));
        return;
      }
      emit(controller, entryHeader(next.value.type, next.value.size));
      emit(controller, next.value.zlib);
    },
    async cancel(reason) {
      await iterator.return?.(reason);
    },
  });
}
