/**
 * The gateway's client of the git service over smart HTTP: reads one ref (protocol v2
 * `ls-refs`), asks which objects the service has (protocol v2 `fetch` negotiation: `have`
 * lines answered by `ACK`s, never a pack), pushes a pack with `receive-pack` and reads its
 * report-status, and relays clients' read requests with the service's credentials. It owns the
 * service key and must never put it in an error, a log line or a reply.
 *
 * @module
 */

import { concat, errorText } from "../util.ts";
import { isObjectId, ZERO_ID } from "./objects.ts";
import { DELIM, FLUSH, pkt, PktReader, ProtocolError } from "./pktline.ts";

/** Where the git service is and how the gateway authenticates to it. */
export interface GitServiceOptions {
  /** Base URL; repository `r` lives at `<baseUrl>/<r>`. */
  baseUrl: string;
  /** User name sent with the key in HTTP Basic authentication. */
  user: string;
  /** The service's key (a password or access token); only the gateway holds it. */
  key: string;
}

/** What went wrong talking to the git service; the message never carries the key. */
export class GitServiceError extends Error {
  override name = "GitServiceError";
  constructor(
    /** `refused`: the service rejected the gateway's credentials; `missing`: no such
     * repository; `unreachable`: no HTTP answer; `protocol`: an answer the gateway cannot
     * read. */
    readonly kind: "refused" | "missing" | "unreachable" | "protocol",
    message: string,
  ) {
    super(message);
  }
}

/** A ref update: from `old` (null: the ref must not exist) to `new`. */
export interface RefUpdate {
  /** Full ref name, `refs/heads/<branch>`. */
  ref: string;
  /** The value the ref must have now, or null when it must not exist. */
  old: string | null;
  /** The value it gets. */
  new: string;
}

/** What receive-pack reported. */
export type PushReport =
  | { ok: true }
  | { ok: false; reason: string };

/** Haves per negotiation request; each line is 50 bytes, so a request stays near 50 KB. */
const HAVES_PER_REQUEST = 1000;

const decoder = new TextDecoder();
const AGENT = "agent=mwsync-gateway/1";

/** The gateway's view of the git service. */
export class GitService {
  readonly #baseUrl: string;
  readonly #auth: string;
  /** Protocol v2 capabilities per repository, read once per gateway instance. */
  readonly #caps = new Map<string, Promise<Set<string>>>();

  constructor(options: GitServiceOptions) {
    this.#baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.#auth = "Basic " + btoa(`${options.user}:${options.key}`);
  }

  /** The URL of repository `repo` (no credentials in it). */
  repoUrl(repo: string): string {
    return `${this.#baseUrl}/${repo}`;
  }

  /** Sends one request with the service's credentials, mapping failures to errors. */
  async #send(repo: string, path: string, init: RequestInit): Promise<Response> {
    const url = `${this.repoUrl(repo)}/${path}`;
    const headers = new Headers(init.headers);
    headers.set("Authorization", this.#auth);
    headers.set("User-Agent", "mwsync-gateway/1");
    let res: Response;
    try {
      res = await fetch(url, { ...init, headers });
    } catch (e) {
      throw new GitServiceError(
        "unreachable",
        `the git service at ${this.repoUrl(repo)} did not answer: ${errorText(e)}`,
      );
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw new GitServiceError(
        "refused",
        `the git service refused the gateway's credentials for ${repo} (HTTP ${res.status}); ` +
          "check GIT_SERVICE_USER and GIT_SERVICE_KEY",
      );
    }
    if (res.status === 404) {
      await res.body?.cancel();
      throw new GitServiceError("missing", `the git service has no repository ${repo}`);
    }
    if (!res.ok) {
      const text = (await res.text().catch(() => "")).slice(0, 200);
      throw new GitServiceError(
        "protocol",
        `the git service answered HTTP ${res.status} for ${repo}/${path.split("?")[0]}` +
          (text.trim() ? `: ${text.trim()}` : ""),
      );
    }
    return res;
  }

  /** The repository's protocol v2 capabilities (`fetch=shallow wait-for-done` gives
   * `fetch`, `fetch:shallow`, `fetch:wait-for-done`). */
  capabilities(repo: string): Promise<Set<string>> {
    let caps = this.#caps.get(repo);
    if (!caps) {
      caps = this.#readCapabilities(repo);
      caps.catch(() => this.#caps.delete(repo));
      this.#caps.set(repo, caps);
    }
    return caps;
  }

  async #readCapabilities(repo: string): Promise<Set<string>> {
    const res = await this.#send(repo, "info/refs?service=git-upload-pack", {
      headers: { "Git-Protocol": "version=2" },
    });
    const body = res.body;
    if (!body) throw new GitServiceError("protocol", `empty capability advertisement for ${repo}`);
    const reader = new PktReader(body);
    const caps = new Set<string>();
    let version2 = false;
    try {
      while (true) {
        const p = await reader.read();
        if (!p) break;
        if (p.kind !== "data") {
          if (version2) break;
          continue;
        }
        const line = decoder.decode(p.data).replace(/\n$/, "");
        if (line.startsWith("# service=")) continue;
        if (!version2) {
          if (line !== "version 2") {
            throw new GitServiceError(
              "protocol",
              `the git service does not speak git protocol version 2 for ${repo}`,
            );
          }
          version2 = true;
          continue;
        }
        const [name, value] = splitOnce(line, "=");
        caps.add(name);
        if (value !== undefined) {
          for (const v of value.split(" ")) caps.add(`${name}:${v}`);
        }
      }
    } catch (e) {
      throw asProtocolError(e, repo);
    } finally {
      await reader.cancel();
    }
    if (!version2) {
      throw new GitServiceError("protocol", `no capability advertisement from ${repo}`);
    }
    const format = [...caps].find((c) => c.startsWith("object-format:"));
    if (format && format !== "object-format:sha1") {
      throw new GitServiceError("protocol", `${repo} uses ${format.slice(14)}, not SHA-1`);
    }
    return caps;
  }

  /** Runs one protocol v2 command against upload-pack; returns a reader of the reply. */
  async #command(repo: string, lines: Uint8Array[]): Promise<PktReader> {
    const res = await this.#send(repo, "git-upload-pack", {
      method: "POST",
      headers: {
        "Content-Type": "application/x-git-upload-pack-request",
        "Accept": "application/x-git-upload-pack-result",
        "Git-Protocol": "version=2",
      },
      body: concat(lines),
    });
    if (!res.body) throw new GitServiceError("protocol", `empty reply from ${repo}`);
    return new PktReader(res.body);
  }

  /** The current value of `ref` in `repo`, or null when it does not exist. */
  async readRef(repo: string, ref: string): Promise<string | null> {
    await this.capabilities(repo);
    const reader = await this.#command(repo, [
      pkt("command=ls-refs\n"),
      pkt(`${AGENT}\n`),
      DELIM,
      pkt(`ref-prefix ${ref}\n`),
      FLUSH,
    ]);
    let found: string | null = null;
    try {
      while (true) {
        const p = await reader.read();
        if (!p || p.kind === "flush") break;
        if (p.kind !== "data") continue;
        const [id, name] = decoder.decode(p.data).replace(/\n$/, "").split(" ");
        if (name === ref) {
          if (!isObjectId(id)) {
            throw new GitServiceError("protocol", `ls-refs gave "${id}" for ${ref} in ${repo}`);
          }
          found = id;
        }
      }
    } catch (e) {
      throw asProtocolError(e, repo);
    } finally {
      await reader.cancel();
    }
    return found;
  }

  /**
   * Which of `ids` the service's object store has. Each request sends up to 1,000 `have` lines
   * and no `done`; upload-pack answers `ACK <id>` for each one it has (or `NAK`) and, with
   * `wait-for-done`, sends no pack. Servers without `wait-for-done` may follow with `ready` and
   * a pack, which is cancelled unread.
   */
  async has(repo: string, ids: string[]): Promise<Set<string>> {
    const present = new Set<string>();
    if (ids.length === 0) return present;
    const caps = await this.capabilities(repo);
    const waitForDone = caps.has("fetch:wait-for-done");
    for (let i = 0; i < ids.length; i += HAVES_PER_REQUEST) {
      const chunk = ids.slice(i, i + HAVES_PER_REQUEST);
      const lines = [pkt("command=fetch\n"), pkt(`${AGENT}\n`), DELIM, pkt("no-progress\n")];
      if (waitForDone) lines.push(pkt("wait-for-done\n"));
      for (const id of chunk) lines.push(pkt(`have ${id}\n`));
      lines.push(FLUSH);
      const reader = await this.#command(repo, lines);
      const asked = new Set(chunk);
      try {
        const first = await reader.read();
        if (!first || first.kind !== "data" || decoder.decode(first.data) !== "acknowledgments\n") {
          throw new GitServiceError(
            "protocol",
            `fetch negotiation in ${repo} gave no acknowledgments`,
          );
        }
        while (true) {
          const p = await reader.read();
          if (!p || p.kind !== "data") break;
          const line = decoder.decode(p.data).replace(/\n$/, "");
          if (line === "NAK" || line === "ready") continue;
          const m = line.match(/^ACK ([0-9a-f]{40})$/);
          if (!m || !asked.has(m[1])) {
            throw new GitServiceError("protocol", `fetch negotiation in ${repo} gave "${line}"`);
          }
          present.add(m[1]);
        }
      } catch (e) {
        throw asProtocolError(e, repo);
      } finally {
        await reader.cancel();
      }
    }
    return present;
  }

  /**
   * Pushes `pack` (a whole pack stream) and the one ref update with receive-pack, and reads
   * report-status. The service updates the ref only if it still has the value `old` and the
   * objects make `new` complete (its connectivity check).
   */
  async receivePack(
    repo: string,
    update: RefUpdate,
    pack: ReadableStream<Uint8Array>,
  ): Promise<PushReport> {
    const command = pkt(
      `${update.old ?? ZERO_ID} ${update.new} ${update.ref}\0report-status quiet ${AGENT}\n`,
    );
    const body = prepend(concat([command, FLUSH]), pack);
    const res = await this.#send(repo, "git-receive-pack", {
      method: "POST",
      headers: {
        "Content-Type": "application/x-git-receive-pack-request",
        "Accept": "application/x-git-receive-pack-result",
      },
      body,
    });
    if (!res.body) throw new GitServiceError("protocol", `receive-pack in ${repo} said nothing`);
    const reader = new PktReader(res.body);
    try {
      const unpack = await reader.readLine();
      if (unpack === null || !unpack.startsWith("unpack ")) {
        throw new GitServiceError("protocol", `receive-pack in ${repo} gave no unpack status`);
      }
      const status = await reader.readLine();
      if (unpack !== "unpack ok") {
        return { ok: false, reason: `the service could not unpack: ${unpack.slice(7)}` };
      }
      if (status === `ok ${update.ref}`) return { ok: true };
      const prefix = `ng ${update.ref} `;
      if (status !== null && status.startsWith(prefix)) {
        return { ok: false, reason: status.slice(prefix.length) };
      }
      throw new GitServiceError("protocol", `receive-pack in ${repo} reported "${status}"`);
    } catch (e) {
      throw asProtocolError(e, repo);
    } finally {
      await reader.cancel();
    }
  }

  /**
   * Relays a client's read request (`info/refs?service=git-upload-pack` or `git-upload-pack`)
   * to the service with the service's credentials, streaming both bodies.
   */
  async relay(repo: string, path: string, req: Request): Promise<Response> {
    const headers = new Headers();
    for (const name of ["Content-Type", "Accept", "Git-Protocol", "Content-Encoding"]) {
      const v = req.headers.get(name);
      if (v !== null) headers.set(name, v);
    }
    const query = new URL(req.url).search;
    const res = await this.#send(repo, path + query, {
      method: req.method,
      headers,
      body: req.method === "GET" || req.method === "HEAD" ? undefined : req.body,
    });
    const out = new Headers();
    for (const name of ["Content-Type", "Cache-Control", "Expires", "Pragma"]) {
      const v = res.headers.get(name);
      if (v !== null) out.set(name, v);
    }
    return new Response(res.body, { status: res.status, headers: out });
  }
}

/** A stream of `head` followed by everything in `tail`. */
function prepend(head: Uint8Array, tail: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = tail.getReader();
  let sentHead = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!sentHead) {
        sentHead = true;
        controller.enqueue(head);
        return;
      }
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel(reason) {
      await reader.cancel(reason);
    },
  });
}

/** `a=b c` → [`a`, `b c`]; without `=` the value is undefined. */
function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

/** Pkt-line framing errors become protocol errors naming the repository. */
function asProtocolError(e: unknown, repo: string): unknown {
  if (e instanceof ProtocolError) {
    return new GitServiceError("protocol", `unreadable reply from ${repo}: ${e.message}`);
  }
  return e;
}
