/**
 * The gateway's formats against real git: batches as `git cat-file --batch` writes them, object
 * links as git builds trees and commits, packs as `git index-pack` reads them, and the settings'
 * error messages.
 *
 * @module
 */

import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import { BatchFormatError, BatchRefused, parseBatch } from "../src/batch.ts";
import { ConfigError, readConfig } from "../src/config.ts";
import { links, MalformedObject, objectId } from "../src/git/objects.ts";
import { entryHeader, packStream } from "../src/git/pack.ts";
import type { PackEntry } from "../src/git/pack.ts";
import { git, gitBytes, noise, SourceRepo } from "./helpers/git.ts";

const enc = new TextEncoder();

async function tempRepo(): Promise<{ dir: string; src: SourceRepo }> {
  const dir = await Deno.makeTempDir({ prefix: "gateway-format-" });
  return { dir, src: await SourceRepo.init(`${dir}/src`) };
}

/** A batch written by `git cat-file --batch` parses into the same ids, types and contents. */
Deno.test("a batch from git cat-file --batch parses object by object", async () => {
  const { dir, src } = await tempRepo();
  try {
    const c = await src.commit({ "a.xml": "<a/>\n", "n/1/b.xml": "<b/>\n" }, "one");
    const ids = await src.objects(c);
    const objects = parseBatch(await src.batch(ids), { maxObjects: 100 });
    assert.deepEqual(objects.map((o) => o.id), ids);
    for (const o of objects) {
      assert.equal(o.type, await src.type(o.id));
      const pretty = await gitBytes(src.dir, ["cat-file", o.type, o.id]);
      assert.deepEqual(o.content, pretty.stdout);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Broken framing is refused with the byte offset where it breaks. */
Deno.test("broken batch framing names the byte offset", () => {
  const id = objectId("blob", enc.encode("x"));
  const good = enc.encode(`${id} blob 1\nx\n`);
  const cases: [Uint8Array, RegExp][] = [
    [enc.encode(`${id} blob 1\nx`), /object .* at byte 0: 1 content bytes and a closing LF/],
    [enc.encode(`${id} blob 5\nx\n`), /at byte 0: 5 content bytes/],
    [enc.encode(`${id} blub 1\nx\n`), /"blub" is not commit, tree, blob or tag/],
    [enc.encode(`${id.slice(1)} blob 1\nx\n`), /is not a 40-hex object id/],
    [new Uint8Array([...good, ...enc.encode("garbage\n")]), /header at byte 50 is not/],
    [
      new Uint8Array([...good, ...enc.encode(id)]),
      /no "<id> <type> <size>" header line at byte 50/,
    ],
  ];
  for (const [body, message] of cases) {
    assert.throws(() => parseBatch(body, { maxObjects: 10 }), (e: unknown) => {
      assert.ok(e instanceof BatchFormatError, String(e));
      assert.match(e.message, message);
      return true;
    });
  }
});

/** Every wrong object is named, with the id its content really has; right ones are not. */
Deno.test("a batch names every object whose content does not hash to its id", () => {
  const right = objectId("blob", enc.encode("right"));
  const claimed = objectId("blob", enc.encode("claimed"));
  const body = enc.encode(`${right} blob 5\nright\n${claimed} blob 5\nwrong\n`);
  assert.throws(() => parseBatch(body, { maxObjects: 10 }), (e: unknown) => {
    assert.ok(e instanceof BatchRefused);
    assert.deepEqual(e.mismatched.map((r) => [r.id, r.actual]), [
      [claimed, objectId("blob", enc.encode("wrong"))],
    ]);
    assert.deepEqual(e.malformed, []);
    return true;
  });
});

/** An object sent twice in one batch counts once; more distinct objects than the cap refuse. */
Deno.test("duplicates in a batch count once and the object cap holds", () => {
  const a = objectId("blob", enc.encode("a"));
  const b = objectId("blob", enc.encode("b"));
  const body = enc.encode(`${a} blob 1\na\n${a} blob 1\na\n${b} blob 1\nb\n`);
  assert.deepEqual(parseBatch(body, { maxObjects: 2 }).map((o) => o.id), [a, b]);
  assert.throws(() => parseBatch(body, { maxObjects: 1 }), /more than 1 objects in one batch/);
});

/** Links are what git wrote: a commit's tree and parents, a tree's entries without gitlinks. */
Deno.test("links of commits, trees and tags match git's own objects", async () => {
  const { dir, src } = await tempRepo();
  try {
    const c1 = await src.commit({ "a.xml": "a\n", "d/b.xml": "b\n" }, "one");
    const c2 = await src.commit({ "a.xml": "a2\n" }, "two");
    // A submodule entry (mode 160000) refers to another repository's commit.
    const sub = "1".repeat(40);
    await git(src.dir, ["update-index", "--add", "--cacheinfo", `160000,${sub},sub`]);
    await git(src.dir, ["commit", "--quiet", "-m", "three"]);
    const c3 = await git(src.dir, ["rev-parse", "HEAD"]);
    await git(src.dir, ["tag", "-a", "-m", "v1", "v1", c3]);
    const tag = await git(src.dir, ["rev-parse", "v1"]);
    const content = async (id: string) => {
      const type = await src.type(id);
      return (await gitBytes(src.dir, ["cat-file", type, id])).stdout;
    };
    const tree3 = await git(src.dir, ["rev-parse", `${c3}^{tree}`]);
    assert.deepEqual(links("commit", await content(c3)), [tree3, c2]);
    assert.deepEqual(links("commit", await content(c1)), [
      await git(src.dir, ["rev-parse", `${c1}^{tree}`]),
    ]);
    const entries = (await git(src.dir, ["ls-tree", tree3])).split("\n")
      .filter((l) => !l.startsWith("160000"))
      .map((l) => l.split(/\s+/)[2]);
    assert.deepEqual(links("tree", await content(tree3)), entries);
    assert.deepEqual(links("tag", await content(tag)), [c3]);
    assert.deepEqual(links("blob", enc.encode("tree " + "2".repeat(40))), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Content that is not a tree or commit is refused as malformed, with the reason. */
Deno.test("malformed trees and commits are refused", () => {
  const bad: [Parameters<typeof links>[0], string, RegExp][] = [
    ["tree", "100644 a.txt\0short", /cut short/],
    ["tree", "10x644 a\0" + "x".repeat(20), /mode "10x644"/],
    ["commit", "parent " + "1".repeat(40) + "\n", /does not start with "tree <id>"/],
    ["tag", "type commit\n", /does not start with "object <id>"/],
  ];
  for (const [type, text, message] of bad) {
    assert.throws(() => links(type, enc.encode(text)), (e: unknown) => {
      assert.ok(e instanceof MalformedObject);
      assert.match(e.message, message);
      return true;
    });
  }
});

/** Pack entries of `blobs`, each deflated. */
async function* deflated(blobs: Uint8Array[]): AsyncGenerator<PackEntry> {
  for (const b of blobs) {
    yield { type: "blob", size: b.length, zlib: new Uint8Array(deflateSync(b)) };
  }
}

/** A pack written here is read by `git index-pack`, sizes across the header's varint steps. */
Deno.test("git index-pack accepts the pack and finds every object", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gateway-pack-" });
  try {
    await git(dir, ["init", "--bare", "--quiet", "r.git"]);
    const sizes = [0, 1, 15, 16, 127, 2047, 2048, 262_143, 262_144, 300_000];
    const blobs = sizes.map((n, i) => noise(n, i + 1));
    const ids = blobs.map((b) => objectId("blob", b));
    const pack = new Uint8Array(
      await new Response(packStream(blobs.length, deflated(blobs))).arrayBuffer(),
    );
    await gitBytes(`${dir}/r.git`, ["index-pack", "--stdin", "--strict"], { stdin: pack });
    for (const [i, id] of ids.entries()) {
      const got = await gitBytes(`${dir}/r.git`, ["cat-file", "blob", id]);
      assert.deepEqual(got.stdout, blobs[i], `blob of ${sizes[i]} bytes`);
    }
    // The header's size groups: 4 bits, then 7 bits a byte.
    assert.deepEqual([...entryHeader("blob", 15)], [0x3f]);
    assert.deepEqual([...entryHeader("blob", 16)], [0xb0, 0x01]);
    assert.deepEqual([...entryHeader("commit", 2048)], [0x90, 0x80, 0x01]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A pack stream that is promised more objects than it gets errors instead of ending. */
Deno.test("a pack short of its promised count fails", async () => {
  async function* one(): AsyncGenerator<PackEntry> {
    yield { type: "blob", size: 1, zlib: new Uint8Array(deflateSync(enc.encode("x"))) };
  }
  await assert.rejects(
    new Response(packStream(2, one())).arrayBuffer(),
    /promised 2 objects but got 1/,
  );
});

/** Each settings error names the variable, and no error shows the key or token. */
Deno.test("settings errors name the variable and never echo a secret", () => {
  const good: Record<string, string> = {
    GIT_SERVICE_URL: "https://git.example.com/acme/",
    GIT_SERVICE_KEY: "service-secret-value",
    GATEWAY_TOKEN: "gateway-secret-token-value",
  };
  const config = readConfig((n) => good[n]);
  assert.equal(config.gitServiceUrl, "https://git.example.com/acme");
  assert.equal(config.gitServiceUser, "mwsync-gateway");
  assert.equal(config.limits.maxBatchBytes, 8 * 1024 * 1024);
  assert.equal(config.logRequests, false);
  assert.equal(readConfig((n) => ({ ...good, GATEWAY_LOG: "requests" })[n]).logRequests, true);
  const cases: [Record<string, string | undefined>, RegExp][] = [
    [{ GIT_SERVICE_URL: undefined }, /GIT_SERVICE_URL is not set/],
    [{ GIT_SERVICE_URL: "git.example.com" }, /GIT_SERVICE_URL is not a URL/],
    [{ GIT_SERVICE_URL: "ftp://x/y" }, /must be http or https/],
    [{ GIT_SERVICE_URL: "https://u:service-secret-value@x/y" }, /must not carry credentials/],
    [{ GIT_SERVICE_KEY: "" }, /GIT_SERVICE_KEY is not set/],
    [{ GATEWAY_TOKEN: "short" }, /GATEWAY_TOKEN must be at least 16 characters \(it has 5\)/],
    [{ GATEWAY_TOKEN: "service-secret-value" }, /GATEWAY_TOKEN must differ from GIT_SERVICE_KEY/],
    [{ GATEWAY_MAX_BATCH_BYTES: "12k" }, /GATEWAY_MAX_BATCH_BYTES must be a whole number/],
    [{ GATEWAY_UPLOAD_TTL_SECS: "5" }, /GATEWAY_UPLOAD_TTL_SECS must be a whole number from 60/],
    [{ GATEWAY_REPOS: "a.git,../b" }, /GATEWAY_REPOS has "..\/b"/],
    [{ GATEWAY_LOG: "verbose" }, /GATEWAY_LOG must be "requests" or unset/],
  ];
  for (const [change, message] of cases) {
    const env = { ...good, ...change };
    assert.throws(() => readConfig((n) => env[n]), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, message);
      assert.ok(!e.message.includes("service-secret-value"), e.message);
      assert.ok(!e.message.includes("gateway-secret-token-value"), e.message);
      return true;
    });
  }
});
