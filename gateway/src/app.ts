/**
 * The gateway's HTTP interface: bearer-token authentication, the upload API (open, add a batch,
 * ask what is missing, commit, close) and the read-only relay of git's smart-HTTP fetch to the
 * git service. It turns every failure into a JSON reply that names the cause; it holds no state
 * outside Deno KV, so any number of instances may serve one KV.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import { BatchFormatError, BatchRefused, parseBatch } from "./batch.ts";
import { errorText, readAtMost, TooLarge } from "./util.ts";
import { walkClosure } from "./closure.ts";
import type { Closure } from "./closure.ts";
import { DEFAULT_LIMITS, isBranchName, isRepoPath } from "./config.ts";
import type { Limits } from "./config.ts";
import { isObjectId } from "./git/objects.ts";
import { packStream } from "./git/pack.ts";
import type { PackEntry } from "./git/pack.ts";
import { GitService, GitServiceError } from "./git/service.ts";
import type { GitServiceOptions } from "./git/service.ts";
import { Contended, NoSuchUpload, Staging, systemClock, UploadExpired } from "./staging.ts";
import type { Clock, Upload } from "./staging.ts";

/** What a gateway is made of. */
export interface GatewayOptions {
  /** Its state. */
  kv: Deno.Kv;
  /** The git service behind it. */
  service: GitServiceOptions;
  /** The token clients present (as a Bearer token, or as the HTTP Basic password). */
  token: string;
  /** Time, for expiry and commit leases; the wall clock unless a test drives it. */
  clock?: Clock;
  /** Limits; defaults for those not given. */
  limits?: Partial<Limits>;
  /** Repositories it serves; any under the service URL when absent. */
  repos?: string[];
}

/** A running gateway. */
export interface Gateway {
  /** Answers one HTTP request. */
  fetch(req: Request): Promise<Response>;
  /** Expires unused uploads and removes the keys of dead ones; returns the ids removed. */
  sweep(budget?: number): Promise<string[]>;
  /** The limits in force. */
  limits: Limits;
}

/** A failure with its HTTP status, a stable code and extra JSON fields. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** Keys removed from dead uploads on each open, so abandoned uploads go away without a cron. */
const SWEEP_ON_OPEN = 2000;
/** Staged blobs read ahead of the pack being sent. */
const READ_AHEAD = 8;

/** Builds a gateway. */
export function createGateway(options: GatewayOptions): Gateway {
  const limits: Limits = { ...DEFAULT_LIMITS, ...options.limits };
  const clock = options.clock ?? systemClock;
  const staging = new Staging(options.kv, clock, limits.uploadTtlSecs * 1000);
  const service = new GitService(options.service);
  const tokenDigest = digest(options.token);
  const repos = options.repos ? new Set(options.repos) : null;

  const authorized = (req: Request) => {
    const presented = presentedToken(req.headers.get("Authorization"));
    return presented !== null && timingSafeEqual(digest(presented), tokenDigest);
  };

  const checkRepo = (repo: unknown): string => {
    if (typeof repo !== "string" || !isRepoPath(repo)) {
      throw new HttpError(
        400,
        "bad-request",
        `"repo" must be a repository path, not ${show(repo)}`,
      );
    }
    if (repos && !repos.has(repo)) {
      throw new HttpError(404, "no-such-repository", `this gateway does not serve ${repo}`);
    }
    return repo;
  };

  const view = (u: Upload) => ({
    id: u.id,
    repo: u.repo,
    branch: u.branch,
    ref: `refs/heads/${u.branch}`,
    base: u.base,
    createdAt: new Date(u.createdAt).toISOString(),
    expiresAt: new Date(u.touchedAt + limits.uploadTtlSecs * 1000).toISOString(),
  });

  async function open(req: Request): Promise<Response> {
    const body = await readJson(req);
    const repo = checkRepo(body.repo);
    const branch = body.branch;
    if (typeof branch !== "string" || !isBranchName(branch)) {
      throw new HttpError(
        400,
        "bad-request",
        `"branch" must be a branch name, not ${show(branch)}`,
      );
    }
    const base = body.base ?? null;
    if (base !== null && !isObjectId(base)) {
      throw new HttpError(
        400,
        "bad-request",
        `"base" must be a 40-hex commit id or null, not ${show(base)}`,
      );
    }
    const tip = await service.readRef(repo, `refs/heads/${branch}`);
    if (base !== null && !(await service.has(repo, [base])).has(base)) {
      throw new HttpError(422, "unknown-base", `the git service has no object ${base} in ${repo}`);
    }
    await staging.sweep(SWEEP_ON_OPEN);
    const upload = await staging.open(repo, branch, base);
    return json(201, { ...view(upload), tip, limits: publicLimits(limits) });
  }

  async function addBatch(upload: Upload, req: Request): Promise<Response> {
    const declared = Number(req.headers.get("Content-Length") ?? "0");
    const encoding = (req.headers.get("Content-Encoding") ?? "identity").toLowerCase();
    if (encoding === "identity" && declared > limits.maxBatchBytes) {
      await req.body?.cancel();
      throw tooLarge(limits);
    }
    let stream = req.body;
    if (encoding === "gzip" && stream) stream = stream.pipeThrough(new DecompressionStream("gzip"));
    else if (encoding !== "identity") {
      throw new HttpError(
        415,
        "bad-encoding",
        `Content-Encoding must be gzip or absent, not ${encoding}`,
      );
    }
    let bytes: Uint8Array;
    try {
      bytes = await readAtMost(stream, limits.maxBatchBytes);
    } catch (e) {
      if (e instanceof TooLarge) throw tooLarge(limits);
      throw new HttpError(400, "bad-body", `the batch body could not be read: ${errorText(e)}`);
    }
    let objects;
    try {
      objects = parseBatch(bytes, { maxObjects: limits.maxBatchObjects });
    } catch (e) {
      if (e instanceof BatchFormatError) {
        const status = e.message.startsWith("more than") ? 413 : 400;
        throw new HttpError(status, status === 413 ? "batch-too-large" : "bad-batch", e.message);
      }
      if (e instanceof BatchRefused) {
        const code = e.mismatched.length ? "hash-mismatch" : "malformed-object";
        const names = [...e.mismatched, ...e.malformed].map((r) => r.id).join(", ");
        throw new HttpError(422, code, `refused, nothing of this batch was stored: ${names}`, {
          mismatched: e.mismatched,
          malformed: e.malformed,
        });
      }
      throw e;
    }
    const { stored, already } = await staging.stage(upload, objects);
    return json(200, { received: objects.length, stored, already });
  }

  async function missing(upload: Upload, url: URL): Promise<Response> {
    const tip = url.searchParams.get("tip");
    if (!isObjectId(tip)) {
      throw new HttpError(400, "bad-request", `?tip= must be a 40-hex object id, not ${show(tip)}`);
    }
    const limitText = url.searchParams.get("limit");
    const limit = limitText === null ? limits.maxMissing : Number(limitText);
    if (!Number.isInteger(limit) || limit < 0 || limit > limits.maxMissing) {
      throw new HttpError(400, "bad-request", `?limit= must be 0 to ${limits.maxMissing}`);
    }
    const closure = await walkClosure(staging, service, upload.id, upload.repo, tip);
    return json(200, {
      tip,
      complete: closure.missing.length === 0,
      ...missingList(closure, limit),
      staged: closure.staged.size,
    });
  }

  async function commit(upload: Upload, req: Request): Promise<Response> {
    const body = await readJson(req);
    const ref = body.ref;
    const expectedRef = `refs/heads/${upload.branch}`;
    if (ref !== expectedRef) {
      throw new HttpError(
        400,
        "bad-request",
        `"ref" must be ${expectedRef}, the upload's branch, not ${show(ref)}`,
      );
    }
    const old = body.old ?? null;
    if (old !== null && !isObjectId(old)) {
      throw new HttpError(
        400,
        "bad-request",
        `"old" must be a 40-hex commit id or null, not ${show(old)}`,
      );
    }
    const next = body.new;
    if (!isObjectId(next)) {
      throw new HttpError(
        400,
        "bad-request",
        `"new" must be a 40-hex commit id, not ${show(next)}`,
      );
    }
    const release = await staging.lock(upload.id, limits.commitLeaseSecs * 1000);
    if (!release) {
      throw new HttpError(
        423,
        "busy",
        `another commit of upload ${upload.id} is in progress; retry`,
      );
    }
    try {
      const current = await service.readRef(upload.repo, ref);
      if (current === next) {
        // Already there (a repeat of a commit whose reply was lost): the closure is in the
        // service, so what is still staged of it is dropped.
        const closure = await walkClosure(staging, service, upload.id, upload.repo, next);
        await staging.setBase(upload.id, next);
        await staging.unstage(upload.id, closure.staged);
        return json(200, { status: "committed", ref, old, new: next, objects: 0, already: true });
      }
      if (current !== old) return refMoved(ref, old, current);
      const closure = await walkClosure(staging, service, upload.id, upload.repo, next);
      if (closure.missing.length) {
        return json(422, {
          status: "incomplete",
          message:
            `${closure.missing.length} object(s) of ${next} are neither staged nor in the git service`,
          ...missingList(closure, limits.maxMissing),
        });
      }
      const report = await service.receivePack(
        upload.repo,
        { ref, old, new: next },
        packStream(closure.staged.size, packEntries(upload.id, closure)),
      );
      if (!report.ok) {
        const now = await service.readRef(upload.repo, ref);
        if (now !== old) return refMoved(ref, old, now);
        throw new HttpError(
          502,
          "push-refused",
          `the git service refused to update ${ref}: ${report.reason}`,
        );
      }
      await staging.setBase(upload.id, next);
      await staging.unstage(upload.id, closure.staged);
      return json(200, {
        status: "committed",
        ref,
        old,
        new: next,
        objects: closure.staged.size,
        already: false,
      });
    } finally {
      await release();
    }
  }

  /** The staged objects of a closure as pack entries, blobs read a few ahead. */
  async function* packEntries(uploadId: string, closure: Closure): AsyncGenerator<PackEntry> {
    const list = [...closure.staged];
    const read = (i: number) => {
      const [id, s] = list[i];
      const z = closure.zlib.get(id);
      return z ? Promise.resolve(z) : staging.zlib(uploadId, id, s.meta);
    };
    const ahead: Promise<Uint8Array>[] = [];
    // A read-ahead left behind by an abandoned push must not fail unhandled.
    const start = (i: number) => {
      const p = read(i);
      p.catch(() => {});
      ahead.push(p);
    };
    for (let i = 0; i < Math.min(READ_AHEAD, list.length); i++) start(i);
    for (let i = 0; i < list.length; i++) {
      const zlib = await (ahead.shift() as Promise<Uint8Array>);
      if (i + READ_AHEAD < list.length) start(i + READ_AHEAD);
      const meta = list[i][1].meta;
      yield { type: meta.t, size: meta.n, zlib };
    }
  }

  async function route(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname;
    if (path === "/healthz" && req.method === "GET") return new Response("ok\n");
    if (!authorized(req)) {
      await req.body?.cancel();
      return json(401, {
        status: "error",
        error: "unauthorized",
        message: "missing or wrong gateway token",
      }, { "WWW-Authenticate": 'Basic realm="mwsync-gateway"' });
    }
    if (path.startsWith("/git/")) return relay(req, url);
    if (path === "/v1/uploads") {
      if (req.method === "POST") return open(req);
      if (req.method === "GET") {
        const repo = url.searchParams.get("repo") ?? undefined;
        const branch = url.searchParams.get("branch") ?? undefined;
        const list = await staging.list(repo, branch);
        return json(200, { uploads: list.map(view) });
      }
      throw notAllowed(req);
    }
    const m = path.match(/^\/v1\/uploads\/([0-9a-f-]{36})(\/objects|\/missing|\/commit)?$/);
    if (!m) throw new HttpError(404, "not-found", `no such endpoint: ${req.method} ${path}`);
    const [, id, action] = m;
    if (action === undefined && req.method === "DELETE") {
      await staging.close(id);
      return new Response(null, { status: 204 });
    }
    const upload = await staging.use(id);
    if (action === undefined && req.method === "GET") return json(200, view(upload));
    if (action === "/objects" && req.method === "POST") return addBatch(upload, req);
    if (action === "/missing" && req.method === "GET") return missing(upload, url);
    if (action === "/commit" && req.method === "POST") return commit(upload, req);
    throw notAllowed(req);
  }

  /** Relays git's read side; refuses its write side, which goes through uploads. */
  function relay(req: Request, url: URL): Promise<Response> {
    const m = url.pathname.match(/^\/git\/(.+)\/(info\/refs|git-upload-pack|git-receive-pack)$/);
    if (!m) throw new HttpError(404, "not-found", "only git's smart HTTP is served under /git/");
    const [, repo, endpoint] = m;
    checkRepo(repo);
    const service_ = url.searchParams.get("service");
    if (endpoint === "git-receive-pack" || service_ === "git-receive-pack") {
      throw new HttpError(
        403,
        "read-only",
        "pushes go through the upload API (/v1/uploads), not git push",
      );
    }
    if (endpoint === "info/refs" && service_ !== "git-upload-pack") {
      throw new HttpError(
        403,
        "smart-http-only",
        "only smart HTTP (?service=git-upload-pack) is served",
      );
    }
    if (endpoint === "git-upload-pack" && req.method !== "POST") throw notAllowed(req);
    return service.relay(repo, endpoint, req);
  }

  return {
    limits,
    sweep: (budget?: number) => staging.sweep(budget),
    async fetch(req: Request): Promise<Response> {
      try {
        return await route(req);
      } catch (e) {
        return errorResponse(e);
      }
    },
  };
}

/** The JSON body of the limits, for clients sizing their batches. */
function publicLimits(limits: Limits) {
  return {
    maxBatchBytes: limits.maxBatchBytes,
    maxBatchObjects: limits.maxBatchObjects,
    uploadTtlSecs: limits.uploadTtlSecs,
    maxMissing: limits.maxMissing,
  };
}

/** The missing ids of a closure, cut at `limit`. */
function missingList(closure: Closure, limit: number) {
  return {
    missing: closure.missing.slice(0, limit),
    missingCount: closure.missing.length,
    truncated: closure.missing.length > limit,
  };
}

function refMoved(ref: string, expected: string | null, current: string | null): Response {
  return json(409, {
    status: "ref-moved",
    message: `${ref} is at ${current ?? "nothing"}, not ${expected ?? "nothing"}`,
    ref,
    expected,
    current,
  });
}

function tooLarge(limits: Limits): HttpError {
  return new HttpError(
    413,
    "batch-too-large",
    `a batch may hold at most ${limits.maxBatchBytes} bytes`,
    {
      maxBatchBytes: limits.maxBatchBytes,
    },
  );
}

function notAllowed(req: Request): HttpError {
  return new HttpError(
    405,
    "method-not-allowed",
    `${req.method} is not allowed on ${new URL(req.url).pathname}`,
  );
}

/** Maps any failure to its reply. */
function errorResponse(e: unknown): Response {
  if (e instanceof HttpError) {
    return json(e.status, { status: "error", error: e.code, message: e.message, ...e.extra });
  }
  if (e instanceof NoSuchUpload) {
    return json(404, { status: "error", error: "no-such-upload", message: e.message });
  }
  if (e instanceof UploadExpired) {
    return json(410, { status: "error", error: "upload-expired", message: e.message });
  }
  if (e instanceof Contended) {
    return json(503, { status: "error", error: "contended", message: e.message });
  }
  if (e instanceof GitServiceError) {
    const status = e.kind === "missing" ? 404 : e.kind === "unreachable" ? 503 : 502;
    const code = e.kind === "missing" ? "no-such-repository" : `git-service-${e.kind}`;
    return json(status, { status: "error", error: code, message: e.message });
  }
  console.error("gateway: unexpected failure:", e);
  return json(500, {
    status: "error",
    error: "internal",
    message: `internal error: ${errorText(e)}`,
  });
}

async function readJson(req: Request): Promise<Record<string, unknown>> {
  let text: Uint8Array;
  try {
    text = await readAtMost(req.body, 64 * 1024);
  } catch (e) {
    if (e instanceof TooLarge) {
      throw new HttpError(413, "body-too-large", "a JSON body may hold 64 KiB");
    }
    throw e;
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(text));
  } catch (e) {
    throw new HttpError(400, "bad-json", `the body is not JSON: ${errorText(e)}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(400, "bad-json", "the body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

/** The token of `Bearer <token>` or the password of `Basic base64(user:password)`. */
function presentedToken(header: string | null): string | null {
  if (!header) return null;
  const [scheme, rest] = [
    header.slice(0, header.indexOf(" ")),
    header.slice(header.indexOf(" ") + 1).trim(),
  ];
  if (scheme.toLowerCase() === "bearer") return rest || null;
  if (scheme.toLowerCase() === "basic") {
    let decoded: string;
    try {
      decoded = atob(rest);
    } catch {
      return null;
    }
    const i = decoded.indexOf(":");
    return i < 0 ? null : decoded.slice(i + 1);
  }
  return null;
}

/** SHA-256 of a token, so comparisons take the same time whatever its length. */
function digest(s: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(s).digest());
}

/** A short rendering of a client's value for an error message. */
function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}
