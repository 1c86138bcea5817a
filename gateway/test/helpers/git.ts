/**
 * The tests' use of the real `git` command line: running it without user or system
 * configuration, building source repositories, and reading objects with `git cat-file --batch`
 * (whose output is the gateway's batch format). It is the tests' independent oracle: nothing
 * here uses the gateway's own code.
 *
 * @module
 */

/** Runs `git` in `cwd` with no configuration but the given one; returns stdout bytes. */
export async function gitBytes(
  cwd: string,
  args: string[],
  options: { stdin?: Uint8Array; env?: Record<string, string>; allowFail?: boolean } = {},
): Promise<{ code: number; stdout: Uint8Array; stderr: string }> {
  const child = new Deno.Command("git", {
    args,
    cwd,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: cwd,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
      GIT_AUTHOR_NAME: "Test",
      GIT_AUTHOR_EMAIL: "test@example.com",
      GIT_COMMITTER_NAME: "Test",
      GIT_COMMITTER_EMAIL: "test@example.com",
      GIT_AUTHOR_DATE: "2026-01-01T00:00:00Z",
      GIT_COMMITTER_DATE: "2026-01-01T00:00:00Z",
      GIT_TERMINAL_PROMPT: "0",
      ...options.env,
    },
    stdin: options.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin) {
    const w = child.stdin.getWriter();
    await w.write(options.stdin);
    await w.close();
  }
  const out = await child.output();
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success && !options.allowFail) {
    throw new Error(`git ${args.join(" ")} failed (${out.code}): ${stderr}`);
  }
  return { code: out.code, stdout: out.stdout, stderr };
}

/** Runs `git` and returns its stdout as trimmed text. */
export async function git(
  cwd: string,
  args: string[],
  options: { stdin?: Uint8Array; env?: Record<string, string> } = {},
): Promise<string> {
  const out = await gitBytes(cwd, args, options);
  return new TextDecoder().decode(out.stdout).trim();
}

/** A working repository the tests commit in, as mwsync would. */
export class SourceRepo {
  private constructor(readonly dir: string) {}

  /** Creates an empty repository in `dir` with branch `main`. */
  static async init(dir: string): Promise<SourceRepo> {
    await Deno.mkdir(dir, { recursive: true });
    await git(dir, ["init", "--quiet", "--initial-branch=main"]);
    return new SourceRepo(dir);
  }

  /** Writes `files` (path → content) and commits them; returns the commit id. */
  async commit(files: Record<string, string | Uint8Array>, message: string): Promise<string> {
    for (const [path, content] of Object.entries(files)) {
      const full = `${this.dir}/${path}`;
      await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
      if (typeof content === "string") await Deno.writeTextFile(full, content);
      else await Deno.writeFile(full, content);
    }
    await git(this.dir, ["add", "-A"]);
    await git(this.dir, ["commit", "--quiet", "--allow-empty", "-m", message]);
    return await git(this.dir, ["rev-parse", "HEAD"]);
  }

  /** Ids of the objects reachable from `tip` but not from any of `not`, as git lists them. */
  async objects(tip: string, not: string[] = []): Promise<string[]> {
    const args = ["rev-list", "--objects", tip, ...not.map((n) => `^${n}`)];
    const out = await git(this.dir, args);
    return out.split("\n").filter((l) => l).map((l) => l.slice(0, 40));
  }

  /** The type of object `id`. */
  async type(id: string): Promise<string> {
    return await git(this.dir, ["cat-file", "-t", id]);
  }

  /** The batch (the output of `git cat-file --batch`) holding objects `ids`, in that order. */
  async batch(ids: string[]): Promise<Uint8Array> {
    const stdin = new TextEncoder().encode(ids.map((id) => id + "\n").join(""));
    return (await gitBytes(this.dir, ["cat-file", "--batch"], { stdin })).stdout;
  }
}

/** Deterministic bytes that do not compress (xorshift32 from `seed`), for objects over 64 KiB. */
export function noise(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Two checkpoints of an mwsync-like repository: sharded record files and one large blob. */
export async function books(src: SourceRepo): Promise<{ c1: string; c2: string }> {
  const first: Record<string, string | Uint8Array> = {
    ".mwsync/config.toml": 'tables = ["name", "transaction"]\n',
    // Over 64 KiB even deflated, so KV stores it in chunks.
    "attachments/scan.bin": noise(200_000, 7),
  };
  for (let i = 0; i < 120; i++) {
    const shard = String(i % 7).padStart(3, "0");
    first[`name/${shard}/${String(i % 3).padStart(3, "0")}/N${i}.xml`] =
      `<name>\n  <code>N${i}</code>\n  <balance>${i * 10}</balance>\n</name>\n`;
  }
  const c1 = await src.commit(first, "checkpoint 1");
  const second: Record<string, string> = {};
  for (let i = 0; i < 5; i++) {
    const shard = String(i % 7).padStart(3, "0");
    second[`name/${shard}/${String(i % 3).padStart(3, "0")}/N${i}.xml`] =
      `<name>\n  <code>N${i}</code>\n  <balance>${i * 10 + 1}</balance>\n</name>\n`;
  }
  for (let i = 0; i < 10; i++) {
    second[`transaction/000/${String(i % 2).padStart(3, "0")}/${1000 + i}.xml`] =
      `<transaction>\n  <sequencenumber>${1000 + i}</sequencenumber>\n</transaction>\n`;
  }
  const c2 = await src.commit(second, "checkpoint 2");
  return { c1, c2 };
}

/** Splits `items` into `n` groups round-robin. */
export function roundRobin<T>(items: T[], n: number): T[][] {
  const out: T[][] = Array.from({ length: n }, () => []);
  items.forEach((item, i) => out[i % n].push(item));
  return out.filter((g) => g.length);
}
