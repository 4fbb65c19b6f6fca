#!/usr/bin/env node
// The load generator of bench/memcached.ts: memcached text protocol over raw
// sockets, no libraries, one process. `conns` connections, each with one
// request in flight (pipelining depth 1), keys drawn uniformly from a fixed
// working set `${prefix}0` .. `${prefix}${keys - 1}`, `getPct` % gets and the
// rest sets of `valueBytes` bytes. Every request's latency (write to whole
// reply parsed) is recorded; the result is one JSON line on stdout.
//
//   node bench/memcached_load.mjs '{"port":11211,"conns":4,"seconds":10,"getPct":90,"keys":10000,"valueBytes":100,"prefix":"k"}'
//   node bench/memcached_load.mjs '{"port":11211,"conns":4,"mode":"fill",...}'   set every key once, then get every key once
//   node bench/memcached_load.mjs '{"port":11211,"conns":4,"mode":"getall",...}' get every key once
import net from 'node:net';

const o = { host: '127.0.0.1', conns: 4, seconds: 10, getPct: 90, keys: 10_000, valueBytes: 100, prefix: 'bench:', mode: 'run', seed: 1, ...JSON.parse(process.argv[2] ?? '{}') };
if (!o.port) throw new Error('memcached_load.mjs: port missing');

const value = Buffer.alloc(o.valueBytes, 0x76); // "vvv..."
const getReq = [];
const setReq = [];
for (let i = 0; i < o.keys; i++) {
  const key = `${o.prefix}${i}`;
  getReq.push(Buffer.from(`get ${key}\r\n`, 'latin1'));
  setReq.push(Buffer.concat([Buffer.from(`set ${key} 0 0 ${value.length}\r\n`, 'latin1'), value, Buffer.from('\r\n')]));
}

// xorshift32 per connection: cheap and reproducible
function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

let lat = new Float64Array(1 << 20);
let nLat = 0;
const record = (ms) => {
  if (nLat === lat.length) {
    const bigger = new Float64Array(lat.length * 2);
    bigger.set(lat);
    lat = bigger;
  }
  lat[nLat++] = ms;
};
const counts = { gets: 0, sets: 0, found: 0, notFound: 0, stored: 0, errors: 0 };
const errorSamples = [];

/** Length of a whole reply at the start of buf, or -1 when incomplete. Sets `kind`. */
let kind = '';
function replyLength(buf, isGet) {
  const eol = buf.indexOf('\r\n');
  if (eol < 0) return -1;
  if (isGet && buf[0] === 0x56 /* V */ && buf.latin1Slice(0, 6) === 'VALUE ') {
    const header = buf.latin1Slice(0, eol);
    const bytes = Number(header.slice(header.lastIndexOf(' ') + 1));
    const total = eol + 2 + bytes + 2 + 5; // data, \r\n, END\r\n
    if (buf.length < total) return -1;
    kind = buf.latin1Slice(total - 5, total - 2) === 'END' ? 'found' : 'error';
    return total;
  }
  const line = buf.latin1Slice(0, eol);
  kind = line === 'END' ? 'notFound' : line === 'STORED' ? 'stored' : 'error';
  if (kind === 'error' && errorSamples.length < 5) errorSamples.push(line);
  return eol + 2;
}

function connect() {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: o.host, port: o.port, noDelay: true }, () => resolve(s));
    s.once('error', reject);
  });
}

/** One connection working through `next()` (a request and whether it is a get) until it returns null. */
function worker(sock, next, measure) {
  return new Promise((resolve, reject) => {
    let pending = null;
    let isGet = false;
    let t0 = 0;
    const send = () => {
      const r = next();
      if (r === null) {
        sock.removeAllListeners('data');
        resolve();
        return;
      }
      isGet = r.get;
      t0 = performance.now();
      sock.write(r.buf);
    };
    sock.on('data', (chunk) => {
      let buf = pending === null ? chunk : Buffer.concat([pending, chunk]);
      const n = replyLength(buf, isGet);
      if (n < 0) {
        pending = buf;
        return;
      }
      pending = null;
      if (n !== buf.length) {
        counts.errors++;
        if (errorSamples.length < 5) errorSamples.push(`trailing bytes: ${JSON.stringify(buf.latin1Slice(n, Math.min(buf.length, n + 60)))}`);
      }
      if (measure) {
        record(performance.now() - t0);
        if (isGet) counts.gets++;
        else counts.sets++;
        counts[kind]++;
      }
      buf = null;
      send();
    });
    sock.once('error', reject);
    send();
  });
}

const percentile = (sorted, p) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]);

const socks = await Promise.all(Array.from({ length: o.conns }, connect));
const started = performance.now();
if (o.mode === 'fill' || o.mode === 'getall') {
  // fill: every key set once, then read once (the reads fill wirecache's cache tier); getall: the reads only
  for (const reqs of o.mode === 'fill' ? [setReq, getReq] : [getReq]) {
    let i = 0;
    await Promise.all(socks.map((s) => worker(s, () => (i < reqs.length ? { buf: reqs[i++], get: reqs === getReq } : null), true)));
  }
} else {
  const end = started + o.seconds * 1000;
  await Promise.all(
    socks.map((s, c) => {
      const r = rng(o.seed * 7919 + c + 1);
      let n = 0;
      return worker(
        s,
        () => {
          // the clock is read once every 64 requests
          if ((++n & 63) === 0 && performance.now() >= end) return null;
          const k = Math.floor(r() * o.keys);
          return r() * 100 < o.getPct ? { buf: getReq[k], get: true } : { buf: setReq[k], get: false };
        },
        true,
      );
    }),
  );
}
const seconds = (performance.now() - started) / 1000;
for (const s of socks) s.destroy();
const sorted = lat.subarray(0, nLat).sort();
process.stdout.write(
  `${JSON.stringify({
    ops: nLat,
    seconds,
    opsPerSec: nLat / seconds,
    p50Ms: percentile(sorted, 50),
    p95Ms: percentile(sorted, 95),
    p99Ms: percentile(sorted, 99),
    maxMs: nLat ? sorted[nLat - 1] : 0,
    ...counts,
    errorSamples,
  })}\n`,
);
