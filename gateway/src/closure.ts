/**
 * Walks the closure of a proposed tip: every object reachable from it, descending through the
 * staged ones and stopping at those the git service already has. It yields what a commit must
 * push and what is still missing; it writes nothing.
 *
 * The walk goes breadth-first, one level at a time. For each level it reads which objects are
 * staged (KV), asks the service about the rest in one negotiation, and reads the links of the
 * staged commits, trees and tags to form the next level. An object the service has is taken with
 * its closure, as git's own connectivity guarantee promises; receive-pack checks again on push.
 *
 * @module
 */

import { inflateSync } from "node:zlib";
import { links } from "./git/objects.ts";
import type { GitService } from "./git/service.ts";
import type { StagedMeta, Staging } from "./staging.ts";
import { eachLimited } from "./util.ts";

/** The closure of a tip as seen from one upload. */
export interface Closure {
  /** Staged objects in the closure, in walk order: what a commit pushes. */
  staged: Map<string, StagedMeta>;
  /** zlib streams of the staged commits, trees and tags, read during the walk. */
  zlib: Map<string, Uint8Array>;
  /** Objects in the closure that are neither staged nor in the service, in walk order. */
  missing: string[];
  /** How many objects the walk found in the service (where it stopped). */
  present: number;
}

/** Concurrent reads of staged commits and trees. */
const READ_CONCURRENCY = 16;

/** Walks the closure of `tip` for upload `uploadId` of repository `repo`. */
export async function walkClosure(
  staging: Staging,
  service: GitService,
  uploadId: string,
  repo: string,
  tip: string,
): Promise<Closure> {
  const seen = new Set<string>([tip]);
  const staged = new Map<string, StagedMeta>();
  const zlib = new Map<string, Uint8Array>();
  const missing: string[] = [];
  let present = 0;
  let level = [tip];
  while (level.length) {
    const metas = await staging.metas(uploadId, level);
    const unstaged = level.filter((id) => !metas.has(id));
    const inService = await service.has(repo, unstaged);
    present += inService.size;
    for (const id of unstaged) if (!inService.has(id)) missing.push(id);
    const parents = level.filter((id) => metas.has(id));
    const children = new Map<string, string[]>();
    await eachLimited(parents, READ_CONCURRENCY, async (id) => {
      const s = metas.get(id) as StagedMeta;
      if (s.meta.t === "blob") return;
      const z = await staging.zlib(uploadId, id, s.meta);
      zlib.set(id, z);
      children.set(id, links(s.meta.t, new Uint8Array(inflateSync(z))));
    });
    const next: string[] = [];
    // Walk order follows the level order, not the order reads finished.
    for (const id of parents) {
      staged.set(id, metas.get(id) as StagedMeta);
      for (const child of children.get(id) ?? []) {
        if (!seen.has(child)) {
          seen.add(child);
          next.push(child);
        }
      }
    }
    level = next;
  }
  return { staged, zlib, missing, present };
}
