/**
 * The upload API against a real `git http-backend`: batches in any order and concurrently,
 * refusals by name, resends, the missing list and resuming, commit with compare-and-swap, and
 * expiry driven by the test's clock. What landed is checked with plain git on the service.
 *
 * @module
 */

import assert from "node:assert/strict";
import { books, git, gitBytes, roundRobin, SourceRepo } from "./helpers/git.ts";
import { inWorld, SERVICE_KEY } from "./helpers/world.ts";
import type { World } from "./helpers/world.ts";

const DAY = 24 * 3600 * 1000;
const enc = new TextEncoder();

/** Clones the service (plain git, with the service key) and checks `tip` and all its objects. */
async function assertServiceHas(w: World, src: SourceRepo, tip: string): Promise<void> {
  const clone = `${w.dir}/verify-${tip.slice(0, 8)}`;
  await git(w.dir, [
    "-c",
    `http.extraHeader=Authorization: Bearer ${SERVICE_KEY}`,
    "clone",
    "--quiet",
    "--bare",
    `${w.service.url}/books.git`,
    clone,
  ]);
  assert.equal(await git(clone, ["rev-parse", "refs/heads/main"]), tip);
  assert.equal(
    await git(clone, ["ls-tree", "-r", "--full-tree", tip]),
    await git(src.dir, ["ls-tree", "-r", "--full-tree", tip]),
  );
  const ids = await src.objects(tip);
  const check = await gitBytes(clone, ["cat-file", "--batch-check"], {
    stdin: enc.encode(ids.join("\n") + "\n"),
  });
  assert.ok(!new TextDecoder().decode(check.stdout).includes("missing"));
  await git(w.bare, ["fsck", "--full", "--strict", "--no-dangling"]);
}

/** Sends `ids` from `src` as one batch and expects it accepted. */
async function sendOk(w: World, id: string, src: SourceRepo, ids: string[]) {
  const r = await w.send(id, await src.batch(ids));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as { received: number; stored: number; already: number };
}

function commit(w: World, id: string, old: string | null, next: string) {
  return w.call("POST", `/v1/uploads/${id}/commit`, { ref: "refs/heads/main", old, new: next });
}

function missing(w: World, id: string, tip: string, limit?: number) {
  const q = limit === undefined ? "" : `&limit=${limit}`;
  return w.call("GET", `/v1/uploads/${id}/missing?tip=${tip}${q}`);
}

/** Pushes `tip` to the service directly with plain git, as another writer would. */
async function pushDirect(w: World, src: SourceRepo, tip: string, ref = "refs/heads/main") {
  await git(src.dir, [
    "-c",
    `http.extraHeader=Authorization: Bearer ${SERVICE_KEY}`,
    "push",
    "--quiet",
    "--force",
    `${w.service.url}/books.git`,
    `${tip}:${ref}`,
  ]);
}

function receivePacks(w: World): number {
  return w.service.requests.filter((r) => r.startsWith("POST /books.git/git-receive-pack")).length;
}

/** Batches in an order unrelated to the object graph (by id) stage it all, and commit works. */
Deno.test("out-of-order batches stage every object and commit", () =>
  inWorld(async (w) => {
    const src = await SourceRepo.init(`${w.dir}/src`);
    const { c1 } = await books(src);
    const ids = (await src.objects(c1)).sort();
    const id = await w.open(null);
    const groups: string[][] = [];
    for (let i = 0; i < ids.length; i += 40) groups.push(ids.slice(i, i + 40));
    assert.ok(groups.length >= 3);
    for (const [n, group] of groups.entries()) {
      const r = await sendOk(w, id, src, group);
      assert.deepEqual(r, { received: group.length, stored: group.length, already: 0 });
      const m = await missing(w, id, c1);
      assert.equal(m.body.complete, n === groups.length - 1, `after batch ${n}`);
    }
    const c = await commit(w, id, null, c1);
    assert.equal(c.status, 200, JSON.stringify(c.body));
    assert.equal(c.body.objects, ids.length);
    await assertServiceHas(w, src, c1);
  }));

/** Concurrent batches, some carrying the same objects, stage each object exactly once. */
Deno.test("concurrent batches, overlapping, stage each object once", () =>
  inWorld(async (w) => {
    const src = await SourceRepo.init(`${w.dir}/src`);
    const { c1 } = await books(src);
    const ids = await src.objects(c1);
    const id = await w.open(null);
    const groups = roundRobin(ids, 8);
    // Two extra batches repeat the first group's objects, sent at the same time.
    const sends = [...groups, groups[0], groups[0]].map((g) => sendOk(w, id, src, g));
    const replies = await Promise.all(sends);
    const stored = replies.reduce((n, r) => n + r.stored, 0);
    const already = replies.reduce((n, r) => n + r.already, 0);
    assert.equal(stored, ids.length);
    assert.equal(already, 2 * groups[0].length);
    const m = await missing(w, id, c1);
    assert.equal(m.body.complete, true);
    assert.equal(m.body.staged, ids.length);
    const c = await commit(w, id, null, c1);
    assert.equal(c.status, 200, JSON.stringify(c.body));
    assert.equal(c.body.objects, ids.length);
    await assertServiceHas(w, src, c1);
  }));

/** An object whose content is not its id is refused by name, and its batch stores nothing. */
Deno.test("a wrong hash is refused by name and nothing of its batch is stored", () =>
  inWorld(async (w) => {
    const src = await SourceRepo.init(`${w.dir}/src`);
    const c1 = await src.commit({ "a.xml": "<a/>\n", "b.xml": "<b/>\n" }, "one");
    const blob = await git(src.dir, ["rev-parse", `${c1}:b.xml`]);
    const others = (await src.objects(c1)).filter((o) => o !== blob);
    const forged = "<b>changed</b>\n";
    const actual = await git(src.dir, ["hash-object", "--stdin"], { stdin: enc.encode(forged) });
    const batch = new Uint8Array([
      ...await src.batch(others),
      ...enc.encode(`${blob} blob ${forged.length}\n${forged}\n`),
    ]);
    const id = await w.open(null);
    const r = await w.send(id, batch);
    assert.equal(r.status, 422);
    assert.equal(r.body.error, "hash-mismatch");
    assert.match(r.body.message, new RegExp(blob));
    assert.deepEqual(r.body.mismatched, [{
      id: blob,
      actual,
      reason: `content hashes to ${actual}`,
    }]);
    // Nothing was stored: the commit itself is still missing.
    const m = await missing(w, id, c1);
    assert.deepEqual(m.body.missing, [c1]);
    // A tree whose id is right but whose content is no tree is refused as malformed.
    const junk = "not a tree";
    const junkId = await git(src.dir, ["hash-object", "-t", "tree", "--literally", "--stdin"], {
      stdin: enc.encode(junk),
    });
    const bad = await w.send(id, enc.encode(`${junkId} tree ${junk.length}\n${junk}\n`));
    assert.equal(bad.status, 422);
    assert.equal(bad.body.error, "malformed-object");
    assert.equal(bad.body.malformed[0].id, junkId);
  }));

/** Sending the same batch again stores nothing new and the commit pushes each object once. */
Deno.test("a resent batch is acknowledged as already staged", () =>
  inWorld(async (w) => {
    const src = await SourceRepo.init(`${w.dir}/src`);
    const { c1 } = await books(src);
    const ids = await src.objects(c1);
    const id = await w.open(null);
    assert.deepEqual(await sendOk(w, id, src, ids), {
      received: ids.length,
      stored: ids.length,
      already: 0,
    });
    assert.deepEqual(await sendOk(w, id, src, ids), {
      received: ids.length,
      stored: 0,
      already: ids.length,
    });
    const c = await commit(w, id, null, c1);
    assert.equal(c.status, 200);
    assert.equal(c.body.objects, ids.length);
    // After the commit the objects are in the service; a resend stages them again harmlessly.
    await sendOk(w, id, src, ids.slice(0, 3));
    await assertServiceHas(w, src, c1);
  }));

/** Missing lists exactly the new objects git says are needed; resuming by it completes. */
Deno.test("the missing list names what git needs, and resuming by it completes the upload", () =>
  inWorld(async (w) => {
    const src = await SourceRepo.init(`${w.dir}/src`);
    const { c1, c2 } = await books(src);
    const first = await w.open(null);
    await sendOk(w, first, src, await src.objects(c1));
    assert.equal((await commit(w, first, null, c1)).status, 200);

    // The next checkpoint: only the commit and its root tree arrive before the client "crashes".
    w.clock.advance(1000);
    const fresh = new Set(await src.objects(c2, [c1]));
    const root = await git(src.dir, ["rev-parse", `${c2}^{tree}`]);
    const id = await w.open(c1);
    await sendOk(w, id, src, [c2, root]);
    const rootEntries = (await git(src.dir, ["ls-tree", root])).split("\n").map((l) =>
      l.split(/\s+/)[2]
    );
    const expected = rootEntries.filter((e) => fresh.has(e));
    const m = await missing(w, id, c2);
    assert.equal(m.status, 200);
    assert.deepEqual([...m.body.missing].sort(), [...expected].sort());
    assert.equal(m.body.complete, false);
    assert.equal(m.body.staged, 2);
    // limit cuts the list but not the count.
    const cut = await missing(w, id, c2, 1);
    assert.equal(cut.body.missing.length, 1);
    assert.equal(cut.body.missingCount, expected.length);
    assert.equal(cut.body.truncated, true);

    // Resume: a new client finds the open upload and sends only what is listed, until complete.
    const list = await w.call("GET", "/v1/uploads?repo=books.git&branch=main");
    assert.deepEqual(list.body.uploads.map((u: { id: string }) => u.id), [first, id]);
    const sent = new Set([c2, root]);
    for (let round = 0; round < 10; round++) {
      const r = await missing(w, id, c2);
      if (r.body.complete) break;
      for (const x of r.body.missing) {
        assert.ok(fresh.has(x), `${x} is not new in ${c2}`);
        assert.ok(!sent.has(x), `${x} listed again after it was sent`);
        sent.add(x);
      }
      await sendOk(w, id, src, r.body.missing);
    }
    assert.deepEqual([...sent].sort(), [...fresh].sort());
    const c = await commit(w, id, c1, c2);
    assert.equal(c.status, 200, JSON.stringify(c.body));
    assert.equal(c.body.objects, fresh.size);
    await assertServiceHas(w, src, c2);
  }));

/** A commit lands the objects and the ref; a later checkpoint in the same upload pushes only its
 * own new objects; repeating a landed commit answers success without pushing. */
Deno.test("commit success: plain git sees the objects and the ref", () =>
  inWorld(async (w) => {
    const src = await SourceRepo.init(`${w.dir}/src`);
    const { c1, c2 } = await books(src);
    const id = await w.open(null);
    assert.equal(await w.serviceRef(), null);
    await sendOk(w, id, src, await src.objects(c1));
    assert.equal(await w.serviceRef(), null, "nothing is visible before the commit");
    const r1 = await commit(w, id, null, c1);
    assert.deepEqual(r1.body, {
      status: "committed",
      ref: "refs/heads/main",
      old: null,
      new: c1,
      objects: (await src.objects(c1)).length,
      already: false,
    });
    await assertServiceHas(w, src, c1);
    assert.equal((await w.call("GET", `/v1/uploads/${id}`)).body.base, c1);
    // Pushed objects left the staging area.
    const left = [];
    for await (const e of w.kv.list({ prefix: ["obj", id] })) left.push(e.key);
    assert.deepEqual(left, []);

    const next = await src.objects(c2, [c1]);
    await sendOk(w, id, src, next);
    const r2 = await commit(w, id, c1, c2);
    assert.equal(r2.status, 200);
    assert.equal(r2.body.objects, next.length);
    await assertServiceHas(w, src, c2);

    const pushes = receivePacks(w);
    const again = await commit(w, id, c1, c2);
    assert.equal(again.status, 200);
    assert.equal(again.body.already, true);
    assert.equal(receivePacks(w), pushes);
  }));

/** When the branch is not at `old`, commit answers 409 with the tip and pushes nothing. */
Deno.test("ref moved: 409 with the current tip, and the branch stays as it was", () =>
  inWorld(async (w) => {
    const src = await SourceRepo.init(`${w.dir}/src`);
    const { c1, c2 } = await books(src);
    const id = await w.open(null);
    await sendOk(w, id, src, await src.objects(c1));
    assert.equal((await commit(w, id, null, c1)).status, 200);
    await sendOk(w, id, src, await src.objects(c2, [c1]));
    // Another writer moves main first.
    await git(src.dir, ["checkout", "--quiet", "-b", "other", c1]);
    const theirs = await src.commit({ "other.xml": "<o/>\n" }, "someone else");
    await pushDirect(w, src, theirs);
    const pushes = receivePacks(w);
    const r = await commit(w, id, c1, c2);
    assert.equal(r.status, 409);
    assert.deepEqual(
      {
        status: r.body.status,
        ref: r.body.ref,
        expected: r.body.expected,
        current: r.body.current,
      },
      { status: "ref-moved", ref: "refs/heads/main", expected: c1, current: theirs },
    );
    assert.equal(receivePacks(w), pushes, "no push was attempted");
    assert.equal(await w.serviceRef(), theirs);
    // The staged objects are kept: a retry against the new tip can still use them.
    assert.equal((await missing(w, id, c2)).body.complete, true);
  }));

/** If main moves between the gateway's check and its push, receive-pack's compare-and-swap
 * refuses the update and the gateway answers 409 with the new tip. */
Deno.test("ref moved during the push: receive-pack refuses and the answer is 409", () =>
  inWorld(async (w) => {
    const src = await SourceRepo.init(`${w.dir}/src`);
    const { c1, c2 } = await books(src);
    const id = await w.open(null);
    await sendOk(w, id, src, await src.objects(c1));
    assert.equal((await commit(w, id, null, c1)).status, 200);
    await git(src.dir, ["checkout", "--quiet", "-b", "other", c1]);
    const theirs = await src.commit({ "other.xml": "<o/>\n" }, "someone else");
    await pushDirect(w, src, theirs, "refs/heads/other");
    // The hook moves main to their commit while the gateway's push is being received.
    await Deno.writeTextFile(
      `${w.bare}/hooks/pre-receive`,
      `#!/bin/sh\nenv -u GIT_QUARANTINE_PATH git update-ref refs/heads/main ${theirs}\n`,
    );
    await Deno.chmod(`${w.bare}/hooks/pre-receive`, 0o755);
    await sendOk(w, id, src, await src.objects(c2, [c1]));
    const r = await commit(w, id, c1, c2);
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.equal(r.body.current, theirs);
    assert.equal(await w.serviceRef(), theirs);
    // receive-pack may keep the objects it unpacked, but no ref reaches them.
    assert.equal(await git(w.bare, ["for-each-ref", `--contains=${c2}`]), "");
  }));

/** A commit whose closure lacks objects answers "incomplete" with exactly those ids. */
Deno.test("incomplete: the missing ids are listed and nothing is pushed", () =>
  inWorld(async (w) => {
    const src = await SourceRepo.init(`${w.dir}/src`);
    const { c1 } = await books(src);
    const ids = await src.objects(c1);
    const blob = await git(src.dir, ["rev-parse", `${c1}:attachments/scan.bin`]);
    const id = await w.open(null);
    await sendOk(w, id, src, ids.filter((x) => x !== blob));
    const r = await commit(w, id, null, c1);
    assert.equal(r.status, 422);
    assert.equal(r.body.status, "incomplete");
    assert.deepEqual(r.body.missing, [blob]);
    assert.equal(receivePacks(w), 0);
    assert.equal(await w.serviceRef(), null);
    await sendOk(w, id, src, [blob]);
    assert.equal((await commit(w, id, null, c1)).status, 200);
    await assertServiceHas(w, src, c1);
  }));

/** An upload unused past its TTL expires (sliding with use) and every staged key is removed. */
Deno.test("expiry: an abandoned upload is refused, then swept without a trace", () =>
  inWorld(async (w) => {
    const src = await SourceRepo.init(`${w.dir}/src`);
    const { c1 } = await books(src);
    const ids = await src.objects(c1);
    const kept = await w.open(null);
    await sendOk(w, kept, src, ids);
    // Used just within the TTL, twice: still alive after longer than one TTL in all.
    w.clock.advance(DAY - 1000);
    assert.equal((await missing(w, kept, c1)).status, 200);
    w.clock.advance(DAY - 1000);
    assert.equal((await missing(w, kept, c1)).body.complete, true);

    const abandoned = await w.open(null);
    await sendOk(w, abandoned, src, ids);
    const swept = await w.open(null);
    await sendOk(w, swept, src, ids.slice(0, 5));
    w.clock.advance(DAY + 1000);
    const late = await w.send(abandoned, await src.batch(ids.slice(0, 2)));
    assert.equal(late.status, 410);
    assert.equal(late.body.error, "upload-expired");
    assert.equal((await w.call("GET", `/v1/uploads/${abandoned}`)).status, 404);
    // The others (the kept one is unused for a TTL by now) are removed by the sweep.
    assert.deepEqual((await w.gateway.sweep()).sort(), [kept, swept].sort());
    const keys: Deno.KvKey[] = [];
    for await (const e of w.kv.list({ prefix: [] })) keys.push(e.key);
    assert.deepEqual(keys.filter((k) => k.includes(abandoned) || k.includes(swept)), []);
    assert.deepEqual(keys, []);
    assert.equal((await commit(w, kept, null, c1)).status, 404);
  }));

/** Opening an upload sweeps expired ones, so abandoned uploads go away without a cron. */
Deno.test("opening an upload removes expired ones", () =>
  inWorld(async (w) => {
    const src = await SourceRepo.init(`${w.dir}/src`);
    const { c1 } = await books(src);
    const old = await w.open(null);
    await sendOk(w, old, src, await src.objects(c1));
    w.clock.advance(DAY + 1);
    const fresh = await w.open(null);
    const keys: Deno.KvKey[] = [];
    for await (const e of w.kv.list({ prefix: [] })) keys.push(e.key);
    assert.ok(keys.length > 0);
    assert.deepEqual(keys.filter((k) => k.includes(old)), []);
    assert.ok(keys.every((k) => k.includes(fresh)));
  }));

/** Without the gateway token nothing is answered, staged or passed to the service. */
Deno.test("a wrong token is refused everywhere and changes nothing", () =>
  inWorld(async (w) => {
    const src = await SourceRepo.init(`${w.dir}/src`);
    const c1 = await src.commit({ "a.xml": "<a/>\n" }, "one");
    const id = await w.open(null);
    const batch = await src.batch(await src.objects(c1));
    const before = w.service.requests.length;
    const calls: [string, string, unknown?][] = [
      ["POST", "/v1/uploads", { repo: "books.git", branch: "main", base: null }],
      ["GET", "/v1/uploads"],
      ["GET", `/v1/uploads/${id}`],
      ["POST", `/v1/uploads/${id}/objects`, batch],
      ["GET", `/v1/uploads/${id}/missing?tip=${c1}`],
      ["POST", `/v1/uploads/${id}/commit`, { ref: "refs/heads/main", old: null, new: c1 }],
      ["DELETE", `/v1/uploads/${id}`],
      ["GET", "/git/books.git/info/refs?service=git-upload-pack"],
    ];
    const basic = (pass: string) => `Basic ${btoa(`u:${pass}`)}`;
    for (const [method, path, body] of calls) {
      for (
        const auth of [
          null,
          "Bearer wrong-token-0123456789",
          basic("wrong"),
          `Bearer ${SERVICE_KEY}`,
        ]
      ) {
        const headers: Record<string, string> = auth ? { Authorization: auth } : {};
        const r = await w.call(method, path, body, { token: null, headers });
        assert.equal(r.status, 401, `${method} ${path} with ${auth}`);
        assert.equal(r.body.error, "unauthorized");
        assert.match(r.headers.get("WWW-Authenticate") ?? "", /^Basic /);
      }
    }
    assert.equal(w.service.requests.length, before, "no request reached the git service");
    const m = await missing(w, id, c1);
    assert.deepEqual(m.body.missing, [c1]);
    assert.equal((await w.call("GET", "/v1/uploads")).body.uploads.length, 1);
  }));

/** Batches over the byte or object cap are refused with 413 naming the cap; gzip is accepted. */
Deno.test("batch caps are enforced and a gzipped batch is accepted", () =>
  inWorld(async (w) => {
    const src = await SourceRepo.init(`${w.dir}/src`);
    const { c1 } = await books(src);
    const ids = await src.objects(c1);
    const id = await w.open(null);
    const big = await git(src.dir, ["rev-parse", `${c1}:attachments/scan.bin`]);
    const tooBig = await w.send(id, await src.batch([big]));
    assert.equal(tooBig.status, 413);
    assert.equal(tooBig.body.maxBatchBytes, 100_000);
    const small = ids.filter((x) => x !== big);
    const tooMany = await w.send(id, await src.batch(small.slice(0, 51)));
    assert.equal(tooMany.status, 413);
    assert.match(tooMany.body.message, /more than 50 objects/);
    const gz = new Uint8Array(
      await new Response(
        new Blob([await src.batch(small.slice(0, 50)) as Uint8Array<ArrayBuffer>]).stream()
          .pipeThrough(new CompressionStream("gzip")),
      ).arrayBuffer(),
    );
    const r = await w.send(id, gz, { "Content-Encoding": "gzip" });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.stored, 50);
  }, { limits: { maxBatchBytes: 100_000, maxBatchObjects: 50 } }));

/** A push the service refuses for another reason is a 502 naming the reason; main is kept. */
Deno.test("a push the service refuses is reported with its reason", () =>
  inWorld(async (w) => {
    const src = await SourceRepo.init(`${w.dir}/src`);
    const c1 = await src.commit({ "a.xml": "<a/>\n" }, "one");
    await Deno.writeTextFile(`${w.bare}/hooks/pre-receive`, "#!/bin/sh\necho no >&2\nexit 1\n");
    await Deno.chmod(`${w.bare}/hooks/pre-receive`, 0o755);
    const id = await w.open(null);
    await sendOk(w, id, src, await src.objects(c1));
    const r = await commit(w, id, null, c1);
    assert.equal(r.status, 502);
    assert.equal(r.body.error, "push-refused");
    assert.match(r.body.message, /pre-receive hook declined/);
    assert.equal(await w.serviceRef(), null);
    assert.equal((await missing(w, id, c1)).body.complete, true, "objects stay staged");
  }));

/** Moving the branch to a commit the service already has pushes an empty pack and works. */
Deno.test("a commit of objects all in the service pushes no objects", () =>
  inWorld(async (w) => {
    const src = await SourceRepo.init(`${w.dir}/src`);
    const { c1, c2 } = await books(src);
    const id = await w.open(null);
    await sendOk(w, id, src, await src.objects(c2));
    assert.equal((await commit(w, id, null, c2)).status, 200);
    const r = await commit(w, id, c2, c1);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.objects, 0);
    assert.equal(r.body.already, false);
    assert.equal(await w.serviceRef(), c1);
  }));
