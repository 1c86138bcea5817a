/**
 * A real git smart-HTTP server for the tests: `git http-backend` run as a CGI program behind an
 * API key, the same way `mwsim git-serve` serves mwsync's tests. It owns only the HTTP side; git
 * decides everything about the repositories. It records each request's method and path so tests
 * can tell what reached the service.
 *
 * @module
 */

import { git } from "./git.ts";

/** A running server. */
export interface GitServer {
  /** Base URL: repository `r` is at `<url>/<r>`. */
  url: string;
  /** Directory holding the bare repositories. */
  root: string;
  /** The key every request must carry (Basic password or Bearer token); tests may rotate it. */
  key: string;
  /** `METHOD /path?query` of every authorized request, in arrival order. */
  requests: string[];
  /** Creates the empty bare repository `name` (initial branch `main`) and returns its path. */
  initBare(name: string): Promise<string>;
  /** Stops serving. */
  close(): Promise<void>;
}

/** Starts a server on a free loopback port, serving bare repositories under `root`. */
export function startGitServer(root: string, key: string): GitServer {
  const requests: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) => handle(req, root, self.key, requests),
  );
  const self: GitServer = {
    url: `http://127.0.0.1:${server.addr.port}`,
    root,
    key,
    requests,
    async initBare(name) {
      const path = `${root}/${name}`;
      await git(root, ["init", "--bare", "--quiet", "--initial-branch=main", path]);
      return path;
    },
    close: () => server.shutdown(),
  };
  return self;
}

/** True when the request carries `key` as Bearer token or Basic password. */
function authorized(header: string | null, key: string): boolean {
  if (!header) return false;
  const [scheme, value] = header.split(" ", 2);
  if (scheme?.toLowerCase() === "bearer") return value === key;
  if (scheme?.toLowerCase() === "basic" && value) {
    try {
      const decoded = atob(value);
      return decoded.slice(decoded.indexOf(":") + 1) === key && decoded.includes(":");
    } catch {
      return false;
    }
  }
  return false;
}

async function handle(req: Request, root: string, key: string, log: string[]): Promise<Response> {
  if (!authorized(req.headers.get("Authorization"), key)) {
    await req.body?.cancel();
    return new Response(null, {
      status: 401,
      headers: { "WWW-Authenticate": 'Basic realm="test-git"' },
    });
  }
  const url = new URL(req.url);
  log.push(`${req.method} ${url.pathname}${url.search}`);
  if (url.pathname.split("/").includes("..")) return new Response(null, { status: 404 });
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: root,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: "1",
    PATH_INFO: url.pathname,
    REQUEST_METHOD: req.method,
    QUERY_STRING: url.search.replace(/^\?/, ""),
    REMOTE_USER: "test",
    REMOTE_ADDR: "127.0.0.1",
    SERVER_PROTOCOL: "HTTP/1.1",
    GATEWAY_INTERFACE: "CGI/1.1",
  };
  const copy: [string, string][] = [
    ["Content-Type", "CONTENT_TYPE"],
    ["Content-Length", "CONTENT_LENGTH"],
    ["Content-Encoding", "HTTP_CONTENT_ENCODING"],
    ["Git-Protocol", "GIT_PROTOCOL"],
  ];
  for (const [header, name] of copy) {
    const v = req.headers.get(header);
    if (v !== null) env[name] = v;
  }
  const child = new Deno.Command("git", {
    args: ["http-backend"],
    clearEnv: true,
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  // Feed the request body; closing stdin ends it for the backend.
  (async () => {
    try {
      if (req.body) await req.body.pipeTo(child.stdin);
      else await child.stdin.close();
    } catch {
      // The backend may exit before reading everything (an error reply); nothing to do.
    }
  })();
  const reader = child.stdout.getReader();
  let buf = new Uint8Array(0);
  let headerEnd = -1;
  let sep = 0;
  while (headerEnd < 0) {
    const { done, value } = await reader.read();
    if (done) break;
    const joined = new Uint8Array(buf.length + value.length);
    joined.set(buf);
    joined.set(value, buf.length);
    buf = joined;
    const text = new TextDecoder().decode(buf);
    const crlf = text.indexOf("\r\n\r\n");
    const lf = text.indexOf("\n\n");
    if (crlf >= 0 && (lf < 0 || crlf < lf)) [headerEnd, sep] = [crlf, 4];
    else if (lf >= 0) [headerEnd, sep] = [lf, 2];
  }
  if (headerEnd < 0) {
    await child.status;
    return new Response("git http-backend gave no CGI headers\n", { status: 502 });
  }
  const headerText = new TextDecoder().decode(buf.subarray(0, headerEnd));
  const rest = buf.slice(headerEnd + sep);
  let status = 200;
  const headers = new Headers();
  for (const line of headerText.split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i < 0) continue;
    const name = line.slice(0, i).trim();
    const value = line.slice(i + 1).trim();
    if (name.toLowerCase() === "status") status = parseInt(value, 10);
    else headers.append(name, value);
  }
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      if (rest.length) controller.enqueue(rest);
    },
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) {
        controller.close();
        await child.status;
      } else controller.enqueue(value);
    },
    async cancel() {
      await reader.cancel();
      try {
        child.kill();
      } catch {
        // Already exited.
      }
      await child.status;
    },
  });
  return new Response(body, { status, headers });
}
