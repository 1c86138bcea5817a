/**
 * Entry point for `deno serve` and Deno Deploy: reads the settings from the environment, opens
 * Deno KV (Deploy's own, or GATEWAY_KV_PATH locally) and serves the gateway. It holds no logic
 * of its own; a bad setting stops it before it serves, with a message naming the setting.
 *
 * @module
 */

import { createGateway } from "./src/app.ts";
import { readConfig } from "./src/config.ts";

const config = readConfig((name) => Deno.env.get(name));
const kv = await Deno.openKv(config.kvPath);
const gateway = createGateway({
  kv,
  service: {
    baseUrl: config.gitServiceUrl,
    user: config.gitServiceUser,
    key: config.gitServiceKey,
  },
  token: config.token,
  limits: config.limits,
  repos: config.repos,
});

// On Deno Deploy (which sets DENO_DEPLOYMENT_ID) expired uploads are also swept on a schedule.
// Elsewhere each newly opened upload sweeps a bounded amount; a local cron would keep
// `deno serve` from exiting on SIGTERM.
if (Deno.env.get("DENO_DEPLOYMENT_ID") && typeof Deno.cron === "function") {
  Deno.cron("sweep expired uploads", "*/15 * * * *", async () => {
    await gateway.sweep(50_000);
  });
}

export default {
  fetch: config.logRequests ? logged : (req: Request) => gateway.fetch(req),
} satisfies Deno.ServeDefaultExport;

/**
 * Serves `req` and prints one JSON line about it: method, path, status, and for a batch its
 * `received`, `stored` and `already` counts. The query string and headers are left out, so no
 * token is ever printed.
 */
async function logged(req: Request): Promise<Response> {
  const started = performance.now();
  const res = await gateway.fetch(req);
  const path = new URL(req.url).pathname;
  const line: Record<string, unknown> = { method: req.method, path, status: res.status };
  const print = () => {
    line.ms = Math.round(performance.now() - started);
    console.log(JSON.stringify(line));
  };
  if (res.status === 200 && req.method === "POST" && path.endsWith("/objects")) {
    res.clone().json().then((body) => {
      Object.assign(line, {
        received: body.received,
        stored: body.stored,
        already: body.already,
      });
    }).catch(() => {}).finally(print);
  } else {
    print();
  }
  return res;
}
