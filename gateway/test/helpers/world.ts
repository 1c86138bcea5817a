/**
 * One test's world: a temporary directory, a real git HTTP server with one bare repository, a
 * gateway served over real HTTP on a loopback port with its own KV and a clock the test moves,
 * and a small API client. Everything is torn down by `close`.
 *
 * @module
 */

import { createGateway } from "../../src/app.ts";
import type { Gateway } from "../../src/app.ts";
import type { Limits } from "../../src/config.ts";
import { git } from "./git.ts";
import { startGitServer } from "./git_server.ts";
import type { GitServer } from "./git_server.ts";

/** The gateway token the tests use. */
export const TOKEN = "test-gateway-token-0123456789";
/** The git service's key, which only the gateway holds. */
export const SERVICE_KEY = "test-service-key-abcdefghij";
/** The repository every world serves. */
export const REPO = "books.git";

/** Time the test moves by hand. */
export class FakeClock {
  t = Date.UTC(2026, 0, 1);
  now(): number {
    return this.t;
  }
  /** Moves time forward by `ms`. */
  advance(ms: number): void {
    this.t += ms;
  }
}

/** An API reply. */
export interface Reply {
  status: number;
  // deno-lint-ignore no-explicit-any
  body: any;
  headers: Headers;
}

/** What a test works with. */
export interface World {
  dir: string;
  service: GitServer;
  /** Path of the served bare repository. */
  bare: string;
  gateway: Gateway;
  /** Base URL of the served gateway. */
  url: string;
  clock: FakeClock;
  kv: Deno.Kv;
  /** Calls the API with the right token (or `token`) and parses the JSON reply. */
  call(
    method: string,
    path: string,
    body?: unknown,
    options?: { token?: string | null; headers?: Record<string, string> },
  ): Promise<Reply>;
  /** Opens an upload on `main` building on `base`; returns its id. */
  open(base: string | null, branch?: string): Promise<string>;
  /** Sends a batch body to upload `id`. */
  send(id: string, batch: Uint8Array, headers?: Record<string, string>): Promise<Reply>;
  /** The service's value of `ref` read straight from the bare repository (null if none). */
  serviceRef(ref?: string): Promise<string | null>;
  /** Stops everything and removes the directory. */
  close(): Promise<void>;
}

/** Builds a world; `limits` override the gateway's defaults. */
export async function world(
  options: { limits?: Partial<Limits>; kvPath?: string } = {},
): Promise<World> {
  const dir = await Deno.makeTempDir({ prefix: "gateway-test-" });
  await Deno.mkdir(`${dir}/service`);
  const service = startGitServer(`${dir}/service`, SERVICE_KEY);
  const bare = await service.initBare(REPO);
  const clock = new FakeClock();
  const kv = await Deno.openKv(options.kvPath ?? ":memory:");
  const gateway = createGateway({
    kv,
    service: { baseUrl: service.url, user: "gateway", key: SERVICE_KEY },
    token: TOKEN,
    clock,
    limits: options.limits,
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, gateway.fetch);
  const url = `http://127.0.0.1:${server.addr.port}`;

  const call: World["call"] = async (method, path, body, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    const token = opts.token === undefined ? TOKEN : opts.token;
    if (token !== null) headers["Authorization"] = `Bearer ${token}`;
    let payload: BodyInit | undefined;
    if (body instanceof Uint8Array) payload = body as Uint8Array<ArrayBuffer>;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
    const res = await fetch(url + path, { method, headers, body: payload });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // Not JSON: keep the text.
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };

  return {
    dir,
    service,
    bare,
    gateway,
    url,
    clock,
    kv,
    call,
    async open(base, branch = "main") {
      const r = await call("POST", "/v1/uploads", { repo: REPO, branch, base });
      if (r.status !== 201) throw new Error(`open failed: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body.id;
    },
    send: (id, batch, headers) =>
      call("POST", `/v1/uploads/${id}/objects`, batch, {
        headers: { "Content-Type": "application/x-git-objects", ...headers },
      }),
    async serviceRef(ref = "refs/heads/main") {
      const out = await git(bare, ["for-each-ref", "--format=%(objectname)", ref]);
      return out || null;
    },
    async close() {
      await server.shutdown();
      await service.close();
      kv.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Runs `f` in a fresh world and always tears it down. */
export async function inWorld(
  f: (w: World) => Promise<void>,
  options?: { limits?: Partial<Limits>; kvPath?: string },
): Promise<void> {
  const w = await world(options);
  try {
    await f(w);
  } finally {
    await w.close();
  }
}
