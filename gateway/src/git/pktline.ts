/**
 * The pkt-line framing of git's wire protocols (gitprotocol-common): writing lines and the
 * special packets, and reading them back from a response stream. It knows no command.
 *
 * @module
 */

import { concat } from "../util.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `0000`: ends a message. */
export const FLUSH = encoder.encode("0000");
/** `0001`: separates sections (protocol v2). */
export const DELIM = encoder.encode("0001");

/** The largest payload one pkt-line carries (65520 minus the 4-byte length). */
export const MAX_PAYLOAD = 65516;

/** One data pkt-line carrying `payload` (a string is UTF-8 encoded). */
export function pkt(payload: string | Uint8Array): Uint8Array {
  const bytes = typeof payload === "string" ? encoder.encode(payload) : payload;
  if (bytes.length > MAX_PAYLOAD) {
    throw new RangeError(`pkt-line payload of ${bytes.length} bytes is over ${MAX_PAYLOAD}`);
  }
  const len = (bytes.length + 4).toString(16).padStart(4, "0");
  return concat([encoder.encode(len), bytes]);
}

/** What a read returns: a data line, or one of the special packets. */
export type Packet =
  | { kind: "data"; data: Uint8Array }
  | { kind: "flush" }
  | { kind: "delim" }
  | { kind: "end" }; // response-end (0002) in v2

/** The server's reply does not follow the pkt-line framing. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

/** Reads pkt-lines from a byte stream, buffering only what one line needs. */
export class PktReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buf: Uint8Array = new Uint8Array(0);
  #done = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** Ensures `n` bytes are buffered; false at a clean end of stream before any of them. */
  async #fill(n: number): Promise<boolean> {
    while (this.#buf.length < n) {
      if (this.#done) return false;
      const { done, value } = await this.#reader.read();
      if (done) {
        this.#done = true;
        return false;
      }
      this.#buf = this.#buf.length ? concat([this.#buf, value]) : value;
    }
    return true;
  }

  /** The next packet, or `null` when the stream ends between packets. */
  async read(): Promise<Packet | null> {
    if (!(await this.#fill(4))) {
      if (this.#buf.length) throw new ProtocolError("the reply ends inside a pkt-line length");
      return null;
    }
    const lenText = decoder.decode(this.#buf.subarray(0, 4));
    if (!/^[0-9a-f]{4}$/.test(lenText)) {
      throw new ProtocolError(`the reply has "${lenText}" where a pkt-line length belongs`);
    }
    const len = parseInt(lenText, 16);
    if (len < 4) {
      this.#buf = this.#buf.subarray(4);
      if (len === 0) return { kind: "flush" };
      if (len === 1) return { kind: "delim" };
      if (len === 2) return { kind: "end" };
      throw new ProtocolError(`the reply has the reserved pkt-line length ${lenText}`);
    }
    if (!(await this.#fill(len))) throw new ProtocolError("the reply ends inside a pkt-line");
    const data = this.#buf.slice(4, len);
    this.#buf = this.#buf.subarray(len);
    return { kind: "data", data };
  }

  /** The next data line as text without its trailing LF, or `null` for any other packet. */
  async readLine(): Promise<string | null> {
    const p = await this.read();
    if (!p || p.kind !== "data") return null;
    const text = decoder.decode(p.data);
    return text.endsWith("\n") ? text.slice(0, -1) : text;
  }

  /** Stops reading and discards the rest of the stream. */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}
