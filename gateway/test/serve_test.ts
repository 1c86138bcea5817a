/**
 * The gateway as it is deployed: `deno serve main.ts` as a real process, configured only by
 * environment variables, over a KV file. A SIGKILL and a restart keep an upload and what it
 * staged; a bad setting stops it before it serves.
 *
 * @module
 */

import assert from "node:assert/strict";
import { books, SourceRepo } from "./helpers/git.ts";
import { startGitServer } from "./helpers/git_server.ts";
import { REPO, SERVICE_KEY, TOKEN } from "./helpers/world.ts";

const GATEWAY_DIR = new URL("..", import.meta.url).pathname;

/** A running `deno serve` of the gateway. */
interface Served {
  url: string;
  child: Deno.ChildProcess;
}

/** Starts `deno serve main.ts` with `env`; resolves once it listens. */
async function serve(env: Record<string, string>): Promise<Served> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "serve",
      "--host=127.0.0.1",
      "--port=0",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-write",
      "main.ts",
    ],
    cwd: GATEWAY_DIR,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/tmp",
      NO_COLOR: "1",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // deno serve says where it listens on stderr; keep reading so the pipe never fills.
  const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (true) {
    const { done, value } = await lines.read();
    if (done) throw new Error(`deno serve exited before listening: ${seen}`);
    seen += value;
    const m = seen.match(/Listening on (http:\/\/127\.0\.0\.1:\d+)/);
    if (m) {
      (async () => {
        while (!(await lines.read()).done) { /* drain */ }
      })();
      child.stdout.cancel();
      return { url: m[1], child };
    }
  }
}

async function call(base: string, method: string, path: string, body?: unknown) {
  const headers: Record<string, string> = { Authorization: `Bearer ${TOKEN}` };
  let payload: BodyInit | undefined;
  if (body instanceof Uint8Array) payload = body as Uint8Array<ArrayBuffer>;
  else if (body !== undefined) payload = JSON.stringify(body);
  const res = await fetch(base + path, { method, headers, body: payload });
  return { status: res.status, body: await res.json() };
}

/** Killed with SIGKILL and started again on the same KV, the gateway still has the upload and
 * its staged objects, lists only what is missing, and commits. */
Deno.test("deno serve: a killed gateway restarts with its uploads", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gateway-serve-" });
  await Deno.mkdir(`${dir}/service`);
  const service = startGitServer(`${dir}/service`, SERVICE_KEY);
  try {
    const bare = await service.initBare(REPO);
    const src = await SourceRepo.init(`${dir}/src`);
    const { c1 } = await books(src);
    const ids = await src.objects(c1);
    const env = {
      GIT_SERVICE_URL: service.url,
      GIT_SERVICE_KEY: SERVICE_KEY,
      GATEWAY_TOKEN: TOKEN,
      GATEWAY_KV_PATH: `${dir}/gateway.kv`,
    };
    let served = await serve(env);
    const open = await call(served.url, "POST", "/v1/uploads", {
      repo: REPO,
      branch: "main",
      base: null,
    });
    assert.equal(open.status, 201, JSON.stringify(open.body));
    const id = open.body.id;
    const half = ids.slice(0, Math.floor(ids.length / 2));
    assert.equal(
      (await call(served.url, "POST", `/v1/uploads/${id}/objects`, await src.batch(half))).status,
      200,
    );
    served.child.kill("SIGKILL");
    await served.child.status;

    served = await serve(env);
    try {
      const m = await call(served.url, "GET", `/v1/uploads/${id}/missing?tip=${c1}`);
      assert.equal(m.status, 200, JSON.stringify(m.body));
      assert.equal(m.body.complete, false);
      for (const x of m.body.missing) {
        assert.ok(!half.includes(x), `${x} was staged before the kill`);
      }
      const rest = ids.slice(half.length);
      const sent = await call(
        served.url,
        "POST",
        `/v1/uploads/${id}/objects`,
        await src.batch(ids),
      );
      assert.deepEqual(sent.body, {
        received: ids.length,
        stored: rest.length,
        already: half.length,
      });
      const c = await call(served.url, "POST", `/v1/uploads/${id}/commit`, {
        ref: "refs/heads/main",
        old: null,
        new: c1,
      });
      assert.equal(c.status, 200, JSON.stringify(c.body));
      const tip = new TextDecoder().decode(
        (await new Deno.Command("git", { args: ["--git-dir", bare, "rev-parse", "main"] }).output())
          .stdout,
      ).trim();
      assert.equal(tip, c1);
    } finally {
      served.child.kill("SIGKILL");
      await served.child.status;
    }
  } finally {
    await service.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A missing or weak setting stops `deno serve` before it listens, naming the setting and
 * showing no secret. */
Deno.test("deno serve: a bad setting stops it with the setting's name", async () => {
  const cases: [Record<string, string>, RegExp][] = [
    [
      { GIT_SERVICE_URL: "http://127.0.0.1:9/", GIT_SERVICE_KEY: SERVICE_KEY },
      /GATEWAY_TOKEN is not set/,
    ],
    [
      {
        GIT_SERVICE_URL: "http://127.0.0.1:9/",
        GIT_SERVICE_KEY: SERVICE_KEY,
        GATEWAY_TOKEN: "short",
      },
      /GATEWAY_TOKEN must be at least 16 characters/,
    ],
  ];
  for (const [env, message] of cases) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "serve",
        "--quiet",
        "--host=127.0.0.1",
        "--port=0",
        "--allow-net",
        "--allow-env",
        "main.ts",
      ],
      cwd: GATEWAY_DIR,
      clearEnv: true,
      env: {
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        HOME: Deno.env.get("HOME") ?? "/tmp",
        NO_COLOR: "1",
        ...env,
      },
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.success, false);
    assert.match(stderr, message);
    assert.ok(!stderr.includes(SERVICE_KEY));
  }
});
