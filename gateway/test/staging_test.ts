/**
 * The staging area on its own (an in-memory KV and the test's clock): the commit lease, and that
 * a batch arriving after its upload died writes nothing.
 *
 * @module
 */

import assert from "node:assert/strict";
import { inflateSync } from "node:zlib";
import { objectId } from "../src/git/objects.ts";
import { Staging, UploadExpired } from "../src/staging.ts";
import { noise } from "./helpers/git.ts";
import { FakeClock } from "./helpers/world.ts";

/** One commit at a time holds an upload's lease; a lease left by a crashed commit lapses. */
Deno.test("the commit lease excludes a second commit until released or lapsed", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const clock = new FakeClock();
    const staging = new Staging(kv, clock, 3600_000);
    const u = await staging.open("books.git", "main", null);
    const release = await staging.lock(u.id, 60_000);
    assert.ok(release);
    assert.equal(await staging.lock(u.id, 60_000), null);
    await release();
    const crashed = await staging.lock(u.id, 60_000);
    assert.ok(crashed, "free again after release");
    clock.advance(59_000);
    assert.equal(await staging.lock(u.id, 60_000), null);
    clock.advance(2_000);
    assert.ok(await staging.lock(u.id, 60_000), "a lapsed lease can be taken");
  } finally {
    kv.close();
  }
});

/** A batch staged with an upload read before the upload died is refused and leaves no key, for
 * small (inline) and large (chunked) objects alike. */
Deno.test("a batch racing an upload's death writes nothing", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const clock = new FakeClock();
    const staging = new Staging(kv, clock, 1000);
    const u = await staging.open("books.git", "main", null);
    const small = new TextEncoder().encode("<a/>\n");
    const large = noise(150_000, 3);
    clock.advance(2000);
    assert.deepEqual(await staging.sweep(), [u.id]);
    for (const content of [small, large]) {
      await assert.rejects(
        staging.stage(u, [{ id: objectId("blob", content), type: "blob", content }]),
        UploadExpired,
      );
    }
    const keys: Deno.KvKey[] = [];
    for await (const e of kv.list({ prefix: [] })) keys.push(e.key);
    assert.deepEqual(keys, []);
  } finally {
    kv.close();
  }
});

/** A large object survives the round trip through its chunks byte for byte. */
Deno.test("a chunked object reads back as it was deflated", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const staging = new Staging(kv, new FakeClock(), 3600_000);
    const u = await staging.open("books.git", "main", null);
    const content = noise(300_000, 5);
    const id = objectId("blob", content);
    assert.deepEqual(await staging.stage(u, [{ id, type: "blob", content }]), {
      stored: 1,
      already: 0,
    });
    const meta = (await staging.metas(u.id, [id])).get(id);
    assert.ok(meta && meta.meta.c > 1, "stored in several chunks");
    const back = new Uint8Array(inflateSync(await staging.zlib(u.id, id, meta.meta)));
    assert.deepEqual(back, content);
  } finally {
    kv.close();
  }
});
