#!/usr/bin/env node
// The hit ceiling: the least a Node process pays to answer a repeated query
// from memory on this machine (bench/hit_ceiling.ts measures it beside
// wirecache and MariaDB).
//
// A byte pipe to MariaDB that frames both directions. The first time a
// COM_QUERY text passes, the bytes of its reply are remembered; when the same
// text comes again, they are written back as they are and MariaDB never sees
// it. Nothing else: no invalidation, no session state, no TTL, no key but the
// text, so it is never a product, only a bound. A connection that uses
// anything but COM_QUERY after its login (TLS, a ping, a prepared statement,
// a multi-result reply) becomes a plain pipe.
//
// Usage: node bench/hit_ceiling.mjs LISTEN_PORT TARGET_HOST:TARGET_PORT
import { servePipes } from './pipe_server.mjs';

const DEPRECATE_EOF = 1 << 24;
const CLIENT_SSL = 1 << 11;
const MORE_RESULTS = 0x0008;
/** Reply bytes by query text, shared by every connection. */
const replies = new Map();

/** Whole packets of a byte stream: push(chunk) returns [payload, packet bytes] for each one completed; rest() the bytes of an incomplete one. */
function framer() {
  let pending = null;
  const push = (chunk) => {
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    const out = [];
    let at = 0;
    while (buf.length - at >= 4) {
      const len = buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16);
      if (buf.length - at < 4 + len) break;
      out.push([buf.subarray(at + 4, at + 4 + len), buf.subarray(at, at + 4 + len)]);
      at += 4 + len;
    }
    pending = at < buf.length ? buf.subarray(at) : null;
    return out;
  };
  const rest = () => {
    const r = pending;
    pending = null;
    return r;
  };
  return { push, rest };
}

servePipes('hit_ceiling', (client, upstream) => {
  const clientPackets = framer();
  const serverPackets = framer();
  let plain = false; // a plain pipe from now on
  let serverCaps = -1;
  let sentLogin = false;
  let loggedIn = false;
  let deprecateEof = false;
  // The reply being read: its phase, and the bytes kept for `text` (null: not kept).
  let busy = false;
  let phase = 0; // 0 first packet, 1 column definitions, 2 the EOF after them, 3 rows
  let columns = 0;
  let text = null;
  let kept = [];

  const endReply = (keep) => {
    if (keep && text !== null) replies.set(text, Buffer.concat(kept));
    busy = false;
    text = null;
    kept = [];
  };

  /** One packet from MariaDB (already on its way to the client). */
  const fromServer = (p, bytes) => {
    if (!loggedIn) {
      if (serverCaps < 0) {
        // The greeting: capability flags after the version string, thread id, scramble part 1 and a filler.
        const v = p.indexOf(0, 1);
        serverCaps = (p.readUInt16LE(v + 14) | (p.readUInt16LE(v + 19) << 16)) >>> 0;
      } else if (p[0] === 0x00) loggedIn = true;
      return;
    }
    if (text !== null) kept.push(Buffer.from(bytes));
    if (phase === 0) {
      if (p[0] === 0x00 || p[0] === 0xff) return endReply(false); // only result sets are kept
      if (p[0] >= 0xfb) return (plain = true); // LOAD DATA LOCAL, or more columns than one byte counts
      columns = p[0];
      phase = 1;
      return;
    }
    if (phase === 1) {
      if (--columns === 0) phase = deprecateEof ? 3 : 2;
      return;
    }
    if (phase === 2) {
      phase = 3;
      return;
    }
    if (p[0] === 0xff) return endReply(false);
    if (p[0] === 0xfe && p.length < 0xffffff) {
      phase = 0;
      // The status flags, in an EOF after the warnings, in an OK after two one-byte numbers: offset 3 either way.
      if (p.readUInt16LE(3) & MORE_RESULTS) return (plain = true);
      return endReply(true);
    }
  };

  /** One packet from the client: true when answered here. */
  const fromClient = (p) => {
    if (!loggedIn) {
      if (!sentLogin) {
        sentLogin = true;
        const caps = p.readUInt32LE(0);
        if (caps & CLIENT_SSL && p.length <= 32) plain = true;
        deprecateEof = (caps & serverCaps & DEPRECATE_EOF) !== 0;
      }
      return false;
    }
    if (p[0] !== 0x03 || busy) {
      if (p[0] !== 0x01) plain = true; // anything but COM_QUERY and COM_QUIT
      return false;
    }
    const t = p.toString('latin1', 1);
    const reply = replies.get(t);
    if (reply !== undefined) {
      client.write(reply);
      return true;
    }
    busy = true;
    phase = 0;
    text = t;
    kept = [];
    return false;
  };

  client.on('data', (chunk) => {
    if (plain) return upstream.write(chunk);
    const forward = [];
    let answered = false;
    for (const [p, bytes] of clientPackets.push(chunk)) {
      if (!plain && fromClient(p)) answered = true;
      else forward.push(bytes);
    }
    // Turned into a pipe: what remains of an incomplete packet goes on now.
    const rest = plain ? clientPackets.rest() : null;
    if (rest) forward.push(rest);
    if (forward.length > 0) upstream.write(answered || forward.length > 1 ? Buffer.concat(forward) : forward[0]);
  });
  upstream.on('data', (chunk) => {
    if (!plain) for (const [p, bytes] of serverPackets.push(chunk)) if (!plain) fromServer(p, bytes);
    client.write(chunk);
  });
});
