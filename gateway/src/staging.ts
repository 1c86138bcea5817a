/**
 * The uploads and their staged objects in Deno KV: opening, touching and expiring uploads,
 * storing objects (deflated, chunked to KV's value limit) idempotently under concurrency, and
 * reading or dropping them. It must not talk to the git service or decide what a commit needs.
 *
 * Keys (one KV belongs to one gateway):
 *
 *     ["upload", id]                     UploadRecord; changes only when the upload dies
 *     ["touch", id]                      ms of the last request on the upload (expiry clock)
 *     ["base", id]                       the commit the upload builds on (advanced by commits)
 *     ["lock", id]                       the lease of the commit in progress, if any
 *     ["obj", id, oid]                   ObjectMeta; present only once all its chunks are
 *     ["chunk", id, oid, writeId, i]     the i-th ≤ 64 KiB piece of a large object's zlib stream
 *
 * Every write of an object checks the upload record's versionstamp, so nothing is written to an
 * upload after it died, and a sweep that lists its keys after marking it dead finds them all.
 *
 * @module
 */

import { deflateSync } from "node:zlib";
import { concat, eachLimited } from "./util.ts";
import type { ObjectType } from "./git/objects.ts";

/** Milliseconds since the Unix epoch; injectable so tests drive expiry without sleeping. */
export interface Clock {
  /** The current time in ms. */
  now(): number;
}

/** The wall clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** What is stored for an upload. */
export interface UploadRecord {
  /** Its id (a random UUID). */
  id: string;
  /** Repository path under the git service's base URL. */
  repo: string;
  /** Branch name, without `refs/heads/`. */
  branch: string;
  /** When it was opened (ms). */
  createdAt: number;
  /** `dead` once expired or closed; its keys are then being removed. */
  state: "open" | "dead";
}

/** An open upload as a request sees it. */
export interface Upload extends UploadRecord {
  /** The commit it builds on (null for a branch that does not exist yet). */
  base: string | null;
  /** When it was last used (ms). */
  touchedAt: number;
  /** The upload record's versionstamp, which every object write checks. */
  versionstamp: string;
}

/** What is stored per staged object. */
export interface ObjectMeta {
  /** Type. */
  t: ObjectType;
  /** Uncompressed size. */
  n: number;
  /** Length of the zlib stream. */
  z: number;
  /** The write that stored it; its chunks carry this id. */
  w: string;
  /** Number of chunks (0 when the zlib stream is inline in `d`). */
  c: number;
  /** The zlib stream, when it fits in the meta value. */
  d?: Uint8Array;
}

/** A staged object's meta with the versionstamp it was read at. */
export interface StagedMeta {
  /** The meta. */
  meta: ObjectMeta;
  /** Its versionstamp, checked when it is dropped. */
  versionstamp: string;
}

/** No upload with this id (never opened, or already removed). */
export class NoSuchUpload extends Error {
  override name = "NoSuchUpload";
  constructor(readonly id: string) {
    super(`no upload ${id}; open a new one`);
  }
}

/** The upload expired (or was closed) and its staged objects are dropped. */
export class UploadExpired extends Error {
  override name = "UploadExpired";
  constructor(readonly id: string) {
    super(`upload ${id} expired; its staged objects are dropped; open a new one`);
  }
}

/** KV kept refusing a write because of concurrent writes. */
export class Contended extends Error {
  override name = "Contended";
}

/** Bytes of one chunk value: KV's value limit. */
const CHUNK = 65536;
/** A zlib stream up to this length is stored inside its meta value (which also holds ~100 bytes
 * of fields, under the 65,536-byte value limit). */
const INLINE_MAX = 60000;
/** KV allows 100 checks, 1,000 mutations and 819,200 bytes per atomic operation; stay under. */
const MAX_CHECKS = 100;
const MAX_MUTATIONS = 1000;
const MAX_ATOMIC_BYTES = 700_000;
/** getMany takes at most 10 keys. */
const GET_MANY = 10;
/** Concurrent KV reads one request keeps in flight. */
const READ_CONCURRENCY = 16;
/** Attempts at an atomic write that concurrent writes keep refusing. */
const ATTEMPTS = 8;
/** zlib level: 1 costs the least CPU per batch; the git service may repack anyway. */
const ZLIB_LEVEL = 1;

/** The staging area of all uploads. */
export class Staging {
  constructor(
    readonly kv: Deno.Kv,
    readonly clock: Clock,
    /** An upload unused for longer than this expires. */
    readonly ttlMs: number,
  ) {}

  /** Opens an upload and returns it. */
  async open(repo: string, branch: string, base: string | null): Promise<Upload> {
    const now = this.clock.now();
    const record: UploadRecord = {
      id: crypto.randomUUID(),
      repo,
      branch,
      createdAt: now,
      state: "open",
    };
    const res = await this.kv.atomic()
      .check({ key: ["upload", record.id], versionstamp: null })
      .set(["upload", record.id], record)
      .set(["touch", record.id], now)
      .set(["base", record.id], base)
      .commit();
    if (!res.ok) throw new Contended("a fresh upload id was taken; try again");
    return { ...record, base, touchedAt: now, versionstamp: res.versionstamp };
  }

  /**
   * The live upload `id`, touched now. Throws {@link NoSuchUpload}, or {@link UploadExpired} for
   * one unused for longer than the TTL (which it then marks dead and starts removing).
   */
  async use(id: string): Promise<Upload> {
    const upload = await this.peek(id);
    if (this.clock.now() - upload.touchedAt > this.ttlMs) {
      await this.#kill(id, upload.versionstamp);
      await this.purge(id, 5000);
      throw new UploadExpired(id);
    }
    const now = this.clock.now();
    if (now > upload.touchedAt) await this.kv.set(["touch", id], now);
    return { ...upload, touchedAt: Math.max(now, upload.touchedAt) };
  }

  /** The upload `id` as stored, untouched; throws if missing or dead. */
  async peek(id: string): Promise<Upload> {
    const [rec, touch, base] = await this.kv.getMany<[UploadRecord, number, string | null]>([
      ["upload", id],
      ["touch", id],
      ["base", id],
    ]);
    if (rec.value === null || rec.versionstamp === null) throw new NoSuchUpload(id);
    if (rec.value.state === "dead") throw new UploadExpired(id);
    return {
      ...rec.value,
      base: base.value ?? null,
      touchedAt: touch.value ?? rec.value.createdAt,
      versionstamp: rec.versionstamp,
    };
  }

  /** Every live upload, optionally only those of one repository and branch, oldest first. */
  async list(repo?: string, branch?: string): Promise<Upload[]> {
    const out: Upload[] = [];
    for await (const e of this.kv.list<UploadRecord>({ prefix: ["upload"] })) {
      const r = e.value;
      if (r.state !== "open") continue;
      if (repo !== undefined && r.repo !== repo) continue;
      if (branch !== undefined && r.branch !== branch) continue;
      try {
        const u = await this.peek(r.id);
        if (this.clock.now() - u.touchedAt <= this.ttlMs) out.push(u);
      } catch (e) {
        if (!(e instanceof NoSuchUpload || e instanceof UploadExpired)) throw e;
      }
    }
    return out.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  /** Records the commit the upload now builds on. */
  async setBase(id: string, base: string): Promise<void> {
    await this.kv.set(["base", id], base);
  }

  /** Which of `ids` are staged in the upload, with their metas. */
  async metas(uploadId: string, ids: string[]): Promise<Map<string, StagedMeta>> {
    const out = new Map<string, StagedMeta>();
    const groups: string[][] = [];
    for (let i = 0; i < ids.length; i += GET_MANY) groups.push(ids.slice(i, i + GET_MANY));
    await eachLimited(groups, READ_CONCURRENCY, async (group) => {
      const got = await this.kv.getMany<ObjectMeta[]>(group.map((oid) => ["obj", uploadId, oid]));
      got.forEach((e, i) => {
        if (e.value !== null && e.versionstamp !== null) {
          out.set(group[i], { meta: e.value, versionstamp: e.versionstamp });
        }
      });
    });
    return out;
  }

  /** The zlib stream of a staged object. */
  async zlib(uploadId: string, oid: string, meta: ObjectMeta): Promise<Uint8Array> {
    if (meta.d) return meta.d;
    const parts: Uint8Array[] = [];
    for await (
      const e of this.kv.list<Uint8Array>({ prefix: ["chunk", uploadId, oid, meta.w] })
    ) parts.push(e.value);
    const out = concat(parts);
    if (parts.length !== meta.c || out.length !== meta.z) {
      throw new Error(`staged object ${oid} has ${parts.length} of its ${meta.c} chunks`);
    }
    return out;
  }

  /**
   * Stores `objects` in the upload unless already staged. Returns how many it stored and how
   * many were there already (staged by an earlier or a concurrent batch). Throws
   * {@link UploadExpired} if the upload dies meanwhile; what it stored before stays staged.
   */
  async stage(
    upload: Upload,
    objects: { id: string; type: ObjectType; content: Uint8Array }[],
  ): Promise<{ stored: number; already: number }> {
    const existing = await this.metas(upload.id, objects.map((o) => o.id));
    const fresh = objects.filter((o) => !existing.has(o.id));
    let stored = 0;
    const small: { id: string; meta: ObjectMeta }[] = [];
    const large: { id: string; meta: ObjectMeta; zlib: Uint8Array }[] = [];
    for (const o of fresh) {
      const zlib = new Uint8Array(deflateSync(o.content, { level: ZLIB_LEVEL }));
      const w = crypto.randomUUID().slice(0, 8);
      if (zlib.length <= INLINE_MAX) {
        small.push({
          id: o.id,
          meta: { t: o.type, n: o.content.length, z: zlib.length, w, c: 0, d: zlib },
        });
      } else {
        const c = Math.ceil(zlib.length / CHUNK);
        large.push({
          id: o.id,
          meta: { t: o.type, n: o.content.length, z: zlib.length, w, c },
          zlib,
        });
      }
    }
    // Small objects: as many per atomic operation as KV's limits allow.
    let group: { id: string; meta: ObjectMeta }[] = [];
    let bytes = 0;
    const flush = async () => {
      if (group.length) stored += await this.#putMetas(upload, group);
      group = [];
      bytes = 0;
    };
    for (const s of small) {
      const size = (s.meta.d?.length ?? 0) + 200;
      if (group.length + 2 > MAX_CHECKS || bytes + size > MAX_ATOMIC_BYTES) await flush();
      group.push(s);
      bytes += size;
    }
    await flush();
    for (const l of large) stored += await this.#putLarge(upload, l.id, l.meta, l.zlib);
    return { stored, already: objects.length - stored };
  }

  /** Writes metas of objects not yet staged, all-or-nothing per attempt; returns how many. */
  async #putMetas(upload: Upload, group: { id: string; meta: ObjectMeta }[]): Promise<number> {
    let todo = group;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const op = this.kv.atomic().check({
        key: ["upload", upload.id],
        versionstamp: upload.versionstamp,
      });
      for (const g of todo) {
        op.check({ key: ["obj", upload.id, g.id], versionstamp: null });
        op.set(["obj", upload.id, g.id], g.meta);
      }
      if ((await op.commit()).ok) return todo.length;
      await this.#assertAlive(upload);
      // Another batch staged some of them meanwhile: write the rest.
      const now = await this.metas(upload.id, todo.map((g) => g.id));
      todo = todo.filter((g) => !now.has(g.id));
      if (todo.length === 0) return 0;
    }
    throw new Contended("concurrent batches kept refusing each other's writes; send it again");
  }

  /** Writes a large object's chunks under its own write id, then its meta; 1 if it stored it. */
  async #putLarge(
    upload: Upload,
    oid: string,
    meta: ObjectMeta,
    zlib: Uint8Array,
  ): Promise<number> {
    const perOp = Math.floor(MAX_ATOMIC_BYTES / CHUNK);
    for (let i = 0; i < meta.c; i += perOp) {
      const op = this.kv.atomic().check({
        key: ["upload", upload.id],
        versionstamp: upload.versionstamp,
      });
      for (let j = i; j < Math.min(meta.c, i + perOp); j++) {
        op.set(["chunk", upload.id, oid, meta.w, j], zlib.subarray(j * CHUNK, (j + 1) * CHUNK));
      }
      if (!(await op.commit()).ok) {
        await this.#assertAlive(upload);
        throw new Contended(`the upload record changed while ${oid} was stored`);
      }
    }
    const res = await this.kv.atomic()
      .check({ key: ["upload", upload.id], versionstamp: upload.versionstamp })
      .check({ key: ["obj", upload.id, oid], versionstamp: null })
      .set(["obj", upload.id, oid], meta)
      .commit();
    if (res.ok) return 1;
    await this.#assertAlive(upload);
    // A concurrent batch staged the same object first: drop this write's chunks.
    await this.#deleteChunks(upload.id, oid, meta);
    return 0;
  }

  /** Throws {@link UploadExpired} when the upload record is gone or dead. */
  async #assertAlive(upload: Upload): Promise<void> {
    const rec = await this.kv.get<UploadRecord>(["upload", upload.id]);
    if (rec.versionstamp !== upload.versionstamp) throw new UploadExpired(upload.id);
  }

  /** Drops staged objects (after a commit pushed them), each only if unchanged since read. */
  async unstage(uploadId: string, objects: Map<string, StagedMeta>): Promise<void> {
    let op = this.kv.atomic();
    let checks = 0;
    const chunked: [string, ObjectMeta][] = [];
    for (const [oid, s] of objects) {
      if (checks + 1 > MAX_CHECKS) {
        await op.commit();
        op = this.kv.atomic();
        checks = 0;
      }
      op.check({ key: ["obj", uploadId, oid], versionstamp: s.versionstamp });
      op.delete(["obj", uploadId, oid]);
      checks++;
      if (s.meta.c > 0) chunked.push([oid, s.meta]);
    }
    if (checks) await op.commit();
    for (const [oid, meta] of chunked) await this.#deleteChunks(uploadId, oid, meta);
  }

  async #deleteChunks(uploadId: string, oid: string, meta: ObjectMeta): Promise<void> {
    for (let i = 0; i < meta.c; i += MAX_MUTATIONS) {
      const op = this.kv.atomic();
      for (let j = i; j < Math.min(meta.c, i + MAX_MUTATIONS); j++) {
        op.delete(["chunk", uploadId, oid, meta.w, j]);
      }
      await op.commit();
    }
  }

  /**
   * Takes the commit lease of an upload for `leaseMs`; returns a release function, or null if
   * another commit holds an unexpired lease.
   */
  async lock(id: string, leaseMs: number): Promise<(() => Promise<void>) | null> {
    const cur = await this.kv.get<number>(["lock", id]);
    if (cur.value !== null && cur.value > this.clock.now()) return null;
    const res = await this.kv.atomic()
      .check(cur)
      .set(["lock", id], this.clock.now() + leaseMs)
      .commit();
    if (!res.ok) return null;
    return async () => {
      await this.kv.atomic()
        .check({ key: ["lock", id], versionstamp: res.versionstamp })
        .delete(["lock", id])
        .commit();
    };
  }

  /** Closes an upload: marks it dead and removes its keys. */
  async close(id: string): Promise<void> {
    const upload = await this.peek(id);
    await this.#kill(id, upload.versionstamp);
    await this.purge(id, Infinity);
  }

  /** Marks an upload dead, so every later write to it fails its check. */
  async #kill(id: string, versionstamp: string): Promise<void> {
    const rec = await this.kv.get<UploadRecord>(["upload", id]);
    if (rec.value === null || rec.versionstamp !== versionstamp) return;
    await this.kv.atomic()
      .check(rec)
      .set(["upload", id], { ...rec.value, state: "dead" })
      .commit();
  }

  /**
   * Removes up to about `budget` keys of a dead upload and says how many it removed and whether
   * none is left. Its record goes last, so a later sweep finds and finishes an interrupted one.
   */
  async purge(id: string, budget: number): Promise<{ finished: boolean; deleted: number }> {
    let deleted = 0;
    for (const prefix of [["obj", id], ["chunk", id]]) {
      while (deleted < budget) {
        const keys: Deno.KvKey[] = [];
        const limit = Math.min(MAX_MUTATIONS, budget - deleted);
        for await (const e of this.kv.list({ prefix }, { limit })) keys.push(e.key);
        if (keys.length === 0) break;
        const op = this.kv.atomic();
        for (const k of keys) op.delete(k);
        await op.commit();
        deleted += keys.length;
      }
      if (deleted >= budget) return { finished: false, deleted };
    }
    await this.kv.atomic()
      .delete(["touch", id])
      .delete(["base", id])
      .delete(["lock", id])
      .delete(["upload", id])
      .commit();
    return { finished: true, deleted: deleted + 4 };
  }

  /**
   * Expires every upload unused for longer than the TTL and removes the keys of dead ones, up
   * to about `budget` keys; returns the ids it finished removing.
   */
  async sweep(budget = Infinity): Promise<string[]> {
    const done: string[] = [];
    let left = budget;
    const records: Deno.KvEntry<UploadRecord>[] = [];
    for await (const e of this.kv.list<UploadRecord>({ prefix: ["upload"] })) records.push(e);
    for (const e of records) {
      if (left <= 0) break;
      const id = e.value.id;
      if (e.value.state === "open") {
        const touch = await this.kv.get<number>(["touch", id]);
        const touchedAt = touch.value ?? e.value.createdAt;
        if (this.clock.now() - touchedAt <= this.ttlMs) continue;
        // Dies only if nobody touched it since it was read.
        const res = await this.kv.atomic()
          .check(e)
          .check(touch)
          .set(["upload", id], { ...e.value, state: "dead" })
          .commit();
        if (!res.ok) continue;
      }
      const { finished, deleted } = await this.purge(id, left);
      if (finished) done.push(id);
      left -= deleted;
    }
    return done;
  }
}
