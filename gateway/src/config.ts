/**
 * The gateway's settings, read once from environment variables and checked before it serves:
 * each error names the variable and what is allowed, and never echoes a secret's value.
 *
 * @module
 */

/** Limits a deployment may tune. */
export interface Limits {
  /** Largest batch body in bytes (after gzip decoding, if sent gzipped). */
  maxBatchBytes: number;
  /** Most objects in one batch. */
  maxBatchObjects: number;
  /** An upload unused for this long expires and its staged objects are dropped. */
  uploadTtlSecs: number;
  /** Most missing ids one answer lists (the rest is flagged `truncated`). */
  maxMissing: number;
  /** How long a commit may hold an upload's commit lease before another may take it. */
  commitLeaseSecs: number;
}

/** The default limits (docs/gateway.md lists them). */
export const DEFAULT_LIMITS: Limits = {
  maxBatchBytes: 8 * 1024 * 1024,
  maxBatchObjects: 10_000,
  uploadTtlSecs: 24 * 3600,
  maxMissing: 10_000,
  commitLeaseSecs: 15 * 60,
};

/** Everything the gateway reads. */
export interface Config {
  /** Base URL of the git service; repository `r` is at `<url>/<r>`. */
  gitServiceUrl: string;
  /** User name sent with the key (HTTP Basic). */
  gitServiceUser: string;
  /** The git service's key; only the gateway holds it. */
  gitServiceKey: string;
  /** The token clients must present. */
  token: string;
  /** Path of a local KV database; undefined on Deno Deploy (its own KV). */
  kvPath?: string;
  /** Repositories the gateway serves; undefined serves any under the base URL. */
  repos?: string[];
  /** Limits. */
  limits: Limits;
  /** Print one JSON line per request on stdout (GATEWAY_LOG=requests). */
  logRequests: boolean;
}

/** A setting is missing or wrong. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Reads the settings through `env` (normally `Deno.env.get`). */
export function readConfig(env: (name: string) => string | undefined): Config {
  const required = (name: string) => {
    const v = env(name)?.trim();
    if (!v) throw new ConfigError(`${name} is not set`);
    return v;
  };
  const url = required("GIT_SERVICE_URL");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`GIT_SERVICE_URL is not a URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    throw new ConfigError(`GIT_SERVICE_URL must be http or https, not ${parsed.protocol}`);
  }
  if (parsed.username || parsed.password) {
    throw new ConfigError(
      "GIT_SERVICE_URL must not carry credentials; set GIT_SERVICE_USER and GIT_SERVICE_KEY",
    );
  }
  if (parsed.search || parsed.hash) {
    throw new ConfigError("GIT_SERVICE_URL must not have a query or fragment");
  }
  const key = required("GIT_SERVICE_KEY");
  const token = required("GATEWAY_TOKEN");
  if (token.length < 16) {
    throw new ConfigError(`GATEWAY_TOKEN must be at least 16 characters (it has ${token.length})`);
  }
  if (token === key) {
    throw new ConfigError("GATEWAY_TOKEN must differ from GIT_SERVICE_KEY");
  }
  const number = (name: string, fallback: number, min: number, max: number) => {
    const v = env(name)?.trim();
    if (!v) return fallback;
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) {
      throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, not "${v}"`);
    }
    return n;
  };
  const reposText = env("GATEWAY_REPOS")?.trim();
  let repos: string[] | undefined;
  if (reposText) {
    repos = reposText.split(",").map((r) => r.trim()).filter((r) => r);
    for (const r of repos) {
      if (!isRepoPath(r)) {
        throw new ConfigError(`GATEWAY_REPOS has "${r}", which is not a repository path`);
      }
    }
  }
  const log = env("GATEWAY_LOG")?.trim() || undefined;
  if (log !== undefined && log !== "requests") {
    throw new ConfigError(`GATEWAY_LOG must be "requests" or unset, not "${log}"`);
  }
  return {
    logRequests: log === "requests",
    gitServiceUrl: url.replace(/\/+$/, ""),
    gitServiceUser: env("GIT_SERVICE_USER")?.trim() || "mwsync-gateway",
    gitServiceKey: key,
    token,
    kvPath: env("GATEWAY_KV_PATH")?.trim() || undefined,
    repos,
    limits: {
      maxBatchBytes: number(
        "GATEWAY_MAX_BATCH_BYTES",
        DEFAULT_LIMITS.maxBatchBytes,
        65536,
        64 * 1024 * 1024,
      ),
      maxBatchObjects: number(
        "GATEWAY_MAX_BATCH_OBJECTS",
        DEFAULT_LIMITS.maxBatchObjects,
        1,
        100_000,
      ),
      uploadTtlSecs: number(
        "GATEWAY_UPLOAD_TTL_SECS",
        DEFAULT_LIMITS.uploadTtlSecs,
        60,
        30 * 86400,
      ),
      maxMissing: DEFAULT_LIMITS.maxMissing,
      commitLeaseSecs: DEFAULT_LIMITS.commitLeaseSecs,
    },
  };
}

/** A repository path: segments of letters, digits, `.`, `_`, `-`, never `.` or `..`. */
export function isRepoPath(s: string): boolean {
  if (s.length === 0 || s.length > 200) return false;
  return s.split("/").every((seg) => /^[A-Za-z0-9._-]+$/.test(seg) && seg !== "." && seg !== "..");
}

/** A branch name git accepts (git check-ref-format, conservatively). */
export function isBranchName(s: string): boolean {
  if (s.length === 0 || s.length > 200) return false;
  if (!/^[A-Za-z0-9._\/-]+$/.test(s)) return false;
  if (s.startsWith("/") || s.endsWith("/") || s.startsWith("-") || s.includes("//")) return false;
  if (s.includes("..") || s.endsWith(".lock") || s.endsWith(".")) return false;
  return s.split("/").every((seg) => !seg.startsWith("."));
}
