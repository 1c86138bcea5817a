/**
 * The wire format of an object batch (the output format of `git cat-file --batch`) and its
 * checks: every object's id is its SHA-1, and every commit, tree and tag parses. It decides
 * nothing about storage and never partially accepts a batch.
 *
 * Format, repeated once per object, with nothing before, between or after:
 *
 *     <40-hex id> SP <type> SP <decimal size> LF <size bytes of content> LF
 *
 * @module
 */

import { isObjectId, isObjectType, links, MalformedObject, objectId } from "./git/objects.ts";
import type { ObjectType } from "./git/objects.ts";

/** One object of a batch, checked. */
export interface BatchObject {
  /** Its id, equal to the SHA-1 of its type, size and content. */
  id: string;
  /** Its type. */
  type: ObjectType;
  /** Its raw (uncompressed) content. */
  content: Uint8Array;
}

/** One refused object: the id the sender claimed and why it was refused. */
export interface Refusal {
  /** The id as sent. */
  id: string;
  /** For a hash mismatch: the SHA-1 the content really has. */
  actual?: string;
  /** What is wrong, in words. */
  reason: string;
}

/** The body is not in the batch format at all (the message names the byte offset). */
export class BatchFormatError extends Error {
  override name = "BatchFormatError";
}

/** Some objects are wrong; nothing of the batch may be stored. */
export class BatchRefused extends Error {
  override name = "BatchRefused";
  constructor(
    /** Hash mismatches. */
    readonly mismatched: Refusal[],
    /** Objects whose content does not parse as their type. */
    readonly malformed: Refusal[],
  ) {
    super(
      `${mismatched.length} object(s) do not match their id and ${malformed.length} do not parse`,
    );
  }
}

/** Limits a batch must keep. */
export interface BatchLimits {
  /** Most objects in one batch. */
  maxObjects: number;
}

const decoder = new TextDecoder();

/**
 * Parses a whole batch body and checks every object. Throws {@link BatchFormatError} when the
 * framing is broken, and {@link BatchRefused} listing every object whose id is not its SHA-1 or
 * whose content does not parse. An object sent twice in one batch counts once.
 */
export function parseBatch(body: Uint8Array, limits: BatchLimits): BatchObject[] {
  const out: BatchObject[] = [];
  const seen = new Set<string>();
  const mismatched: Refusal[] = [];
  const malformed: Refusal[] = [];
  let at = 0;
  while (at < body.length) {
    const lf = body.indexOf(0x0a, at);
    if (lf < 0 || lf - at > 120) {
      throw new BatchFormatError(`no "<id> <type> <size>" header line at byte ${at}`);
    }
    const header = decoder.decode(body.subarray(at, lf));
    const m = header.match(/^(\S+) (\S+) (\d{1,12})$/);
    if (!m) {
      throw new BatchFormatError(
        `header at byte ${at} is not "<id> <type> <size>": ${JSON.stringify(header)}`,
      );
    }
    const [, id, type, sizeText] = m;
    if (!isObjectId(id)) {
      throw new BatchFormatError(`header at byte ${at}: "${id}" is not a 40-hex object id`);
    }
    if (!isObjectType(type)) {
      throw new BatchFormatError(
        `header at byte ${at}: "${type}" is not commit, tree, blob or tag`,
      );
    }
    const size = Number(sizeText);
    const start = lf + 1;
    const end = start + size;
    if (end + 1 > body.length || body[end] !== 0x0a) {
      throw new BatchFormatError(
        `object ${id} at byte ${at}: ${size} content bytes and a closing LF do not follow`,
      );
    }
    at = end + 1;
    if (seen.has(id)) continue;
    seen.add(id);
    if (out.length + mismatched.length + malformed.length >= limits.maxObjects) {
      throw new BatchFormatError(`more than ${limits.maxObjects} objects in one batch`);
    }
    const content = body.subarray(start, end);
    const actual = objectId(type, content);
    if (actual !== id) {
      mismatched.push({ id, actual, reason: `content hashes to ${actual}` });
      continue;
    }
    try {
      links(type, content);
    } catch (e) {
      if (!(e instanceof MalformedObject)) throw e;
      malformed.push({ id, reason: e.message });
      continue;
    }
    out.push({ id, type, content });
  }
  if (mismatched.length || malformed.length) throw new BatchRefused(mismatched, malformed);
  return out;
}
