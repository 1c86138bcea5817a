/**
 * Reading through the gateway: plain `git clone` and `git fetch` against the gateway's URL with
 * the gateway token reach the git service's smart-HTTP read side, the service key never shows,
 * and git's write side is refused there.
 *
 * @module
 */

import assert from "node:assert/strict";
import { books, git, gitBytes, SourceRepo } from "./helpers/git.ts";
import { inWorld, SERVICE_KEY, TOKEN } from "./helpers/world.ts";
import type { World } from "./helpers/world.ts";

async function land(w: World, src: SourceRepo, old: string | null, tip: string) {
  const id = await w.open(old);
  const ids = await src.objects(tip, old ? [old] : []);
  assert.equal((await w.send(id, await src.batch(ids))).status, 200);
  const r = await w.call("POST", `/v1/uploads/${id}/commit`, {
    ref: "refs/heads/main",
    old,
    new: tip,
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
}

/** Clone and fetch through the gateway with its token give the service's branch, and the trace of
 * what the gateway sent back holds neither the service key nor its Basic form. */
Deno.test("git clone and fetch through the gateway read the service", () =>
  inWorld(async (w) => {
    const src = await SourceRepo.init(`${w.dir}/src`);
    const { c1, c2 } = await books(src);
    await land(w, src, null, c1);
    // The token as HTTP Basic password in the URL, as git users and mwsync's URL form give it.
    const host = new URL(w.url).host;
    const url = `http://mwsync:${TOKEN}@${host}/git/books.git`;
    const trace = `${w.dir}/trace.txt`;
    await git(w.dir, ["clone", "--quiet", url, `${w.dir}/reader`], {
      env: { GIT_TRACE_CURL: trace, GIT_TRACE_CURL_NO_DATA: "1" },
    });
    assert.equal(await git(`${w.dir}/reader`, ["rev-parse", "HEAD"]), c1);
    assert.equal(
      await git(`${w.dir}/reader`, ["ls-tree", "-r", "HEAD"]),
      await git(src.dir, ["ls-tree", "-r", c1]),
    );
    await land(w, src, c1, c2);
    await git(`${w.dir}/reader`, ["fetch", "--quiet", "origin"]);
    assert.equal(await git(`${w.dir}/reader`, ["rev-parse", "origin/main"]), c2);
    const traced = await Deno.readTextFile(trace);
    assert.match(traced, /HTTP\/1.1 200/);
    assert.ok(!traced.includes(SERVICE_KEY));
    assert.ok(!traced.includes(btoa(`gateway:${SERVICE_KEY}`)));
  }));

/** git push to the gateway's URL is refused: writes go only through uploads. */
Deno.test("git push through the gateway is refused", () =>
  inWorld(async (w) => {
    const src = await SourceRepo.init(`${w.dir}/src`);
    const c1 = await src.commit({ "a.xml": "<a/>\n" }, "one");
    const host = new URL(w.url).host;
    const out = await gitBytes(src.dir, [
      "push",
      `http://mwsync:${TOKEN}@${host}/git/books.git`,
      `${c1}:refs/heads/main`,
    ], { allowFail: true });
    assert.notEqual(out.code, 0);
    assert.match(out.stderr, /403/);
    assert.equal(await w.serviceRef(), null);
    assert.ok(!w.service.requests.some((r) => r.includes("receive-pack")));
  }));

/** A clone with a wrong token fails with 401 and never reaches the service. */
Deno.test("git clone with a wrong token is refused", () =>
  inWorld(async (w) => {
    const host = new URL(w.url).host;
    const out = await gitBytes(w.dir, [
      "clone",
      `http://mwsync:not-the-token@${host}/git/books.git`,
      `${w.dir}/reader`,
    ], { allowFail: true });
    assert.notEqual(out.code, 0);
    assert.match(out.stderr, /Authentication failed|401/);
    assert.deepEqual(w.service.requests, []);
  }));

/** The gateway's own key refused by the service becomes a 502 that names the settings, not the
 * key, and never a 401 that would make git ask the reader for a password. */
Deno.test("a service key the service refuses is a 502 naming the settings", () =>
  inWorld(async (w) => {
    w.service.key = "rotated-key-the-gateway-does-not-have";
    const r = await w.call("POST", "/v1/uploads", {
      repo: "books.git",
      branch: "main",
      base: null,
    });
    assert.equal(r.status, 502);
    assert.equal(r.body.error, "git-service-refused");
    assert.match(r.body.message, /GIT_SERVICE_USER and GIT_SERVICE_KEY/);
    assert.ok(!JSON.stringify(r.body).includes(SERVICE_KEY));
    const relay = await w.call("GET", "/git/books.git/info/refs?service=git-upload-pack");
    assert.equal(relay.status, 502);
  }));
