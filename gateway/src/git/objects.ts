/**
 * Git loose-object facts the gateway needs: object ids, the SHA-1 of an object, and the ids a
 * commit, tree or tag links to. It must not touch storage or the network.
 *
 * @module
 */

import { createHash } from "node:crypto";

/** The four object kinds a pack without deltas carries. */
export type ObjectType = "commit" | "tree" | "blob" | "tag";

/** Pack type numbers (gitformat-pack: OBJ_COMMIT = 1 … OBJ_TAG = 4). */
export const PACK_TYPE: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3, tag: 4 };

/** The all-zero id git uses for "no such ref". */
export const ZERO_ID = "0".repeat(40);

const HEX = /^[0-9a-f]{40}$/;

/** True for a lower-case 40-hex SHA-1 object id. */
export function isObjectId(s: unknown): s is string {
  return typeof s === "string" && HEX.test(s);
}

/** True for one of the four object type names. */
export function isObjectType(s: string): s is ObjectType {
  return s === "commit" || s === "tree" || s === "blob" || s === "tag";
}

const encoder = new TextEncoder();

/** The object id git gives `content` of type `type`: SHA-1 of `"<type> <size>\0" + content`. */
export function objectId(type: ObjectType, content: Uint8Array): string {
  const hash = createHash("sha1");
  hash.update(encoder.encode(`${type} ${content.length}\0`));
  hash.update(content);
  return hash.digest("hex");
}

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** Why an object's content is not a well-formed object of its type. */
export class MalformedObject extends Error {
  override name = "MalformedObject";
}

const decoder = new TextDecoder("utf-8", { fatal: false });

/**
 * The ids an object refers to, which must be present for it to be usable: a commit's tree and
 * parents, a tree's entries (except submodule commits, mode 160000, which live in another
 * repository), a tag's object; a blob refers to nothing. Throws {@link MalformedObject} when the
 * content does not parse as its type.
 */
export function links(type: ObjectType, content: Uint8Array): string[] {
  switch (type) {
    case "blob":
      return [];
    case "tree":
      return treeLinks(content);
    case "commit":
      return headerLinks(content, "commit");
    case "tag":
      return headerLinks(content, "tag");
  }
}

/** Entries are `<octal mode> SP <name> NUL <20-byte id>`, back to back. */
function treeLinks(content: Uint8Array): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < content.length) {
    const space = content.indexOf(0x20, i);
    if (space < 0) throw new MalformedObject(`tree entry at byte ${i} has no mode`);
    const mode = decoder.decode(content.subarray(i, space));
    if (!/^[0-7]{5,6}$/.test(mode)) {
      throw new MalformedObject(`tree entry at byte ${i} has mode "${mode}"`);
    }
    const nul = content.indexOf(0, space + 1);
    if (nul < 0 || nul === space + 1) {
      throw new MalformedObject(`tree entry at byte ${i} has no name`);
    }
    if (nul + 21 > content.length) {
      throw new MalformedObject(`tree entry at byte ${i} is cut short`);
    }
    // 160000 is a gitlink: a commit of another repository, never stored here.
    if (mode !== "160000") out.push(toHex(content.subarray(nul + 1, nul + 21)));
    i = nul + 21;
  }
  return out;
}

/** A commit starts `tree <id>` then `parent <id>` lines; a tag starts `object <id>`. */
function headerLinks(content: Uint8Array, type: "commit" | "tag"): string[] {
  const end = findHeaderEnd(content);
  const lines = decoder.decode(content.subarray(0, end)).split("\n");
  const out: string[] = [];
  if (type === "commit") {
    const tree = lines[0]?.match(/^tree ([0-9a-f]{40})$/);
    if (!tree) throw new MalformedObject('commit does not start with "tree <id>"');
    out.push(tree[1]);
    for (const line of lines.slice(1)) {
      const parent = line.match(/^parent ([0-9a-f]{40})$/);
      if (!parent) break;
      out.push(parent[1]);
    }
  } else {
    const object = lines[0]?.match(/^object ([0-9a-f]{40})$/);
    if (!object) throw new MalformedObject('tag does not start with "object <id>"');
    out.push(object[1]);
  }
  return out;
}

/** The offset of the blank line that ends a commit's or tag's headers (or the end). */
function findHeaderEnd(content: Uint8Array): number {
  for (let i = 0; i + 1 < content.length; i++) {
    if (content[i] === 0x0a && content[i + 1] === 0x0a) return i;
  }
  return content.length;
}
