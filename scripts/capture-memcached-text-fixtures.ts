/**
 * Captures real memcached text-protocol exchanges for the text protocol's unit
 * tests (test/fixtures/memcached_text.json). Run: npx tsx scripts/capture-memcached-text-fixtures.ts
 * It starts /usr/bin/memcached on a free port (-I 1m: values up to 1 MiB) and stops it afterwards.
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { startMemcached, stopMemcached } from './topology.js';

/** Requests sent one after another on one connection; each waits for memcached's full answer (or silence). */
const REQUESTS: [label: string, request: string][] = [
  ['set', 'set a 5 0 3\r\nabc\r\n'],
  ['set noreply', 'set b 0 0 2 noreply\r\nxy\r\n'],
  ['get hit and miss', 'get a b nope\r\n'],
  ['gets', 'gets a\r\n'],
  ['add exists', 'add a 0 0 1\r\nz\r\n'],
  ['replace missing', 'replace nope 0 0 1\r\nz\r\n'],
  ['append', 'append a 0 0 2\r\n-t\r\n'],
  ['prepend missing', 'prepend nope 0 0 1\r\nz\r\n'],
  ['cas missing', 'cas nope 0 0 1 1\r\nz\r\n'],
  ['cas stale', 'cas a 0 0 1 1\r\nz\r\n'],
  ['delete', 'delete b\r\n'],
  ['delete missing', 'delete b\r\n'],
  ['delete with time', 'delete a 5\r\n'],
  ['set number', 'set n 0 0 2\r\n10\r\n'],
  ['incr', 'incr n 5\r\n'],
  ['decr below zero', 'decr n 100\r\n'],
  ['incr wraps', 'incr n 18446744073709551615\r\nincr n 1\r\n'],
  ['incr non-numeric', 'incr a 1\r\n'],
  ['incr missing', 'incr nope 1\r\n'],
  ['incr bad delta', 'incr n abc\r\n'],
  ['touch', 'touch a 100\r\n'],
  ['touch missing', 'touch nope 100\r\n'],
  ['gat', 'gat 0 a nope\r\n'],
  ['gats', 'gats 0 a\r\n'],
  ['unknown command', 'bogus\r\n'],
  ['empty line', '\r\n'],
  ['bad data chunk', 'set k 0 0 1\r\nxyz\r\n'],
  ['bad flags', 'set k notanumber 0 1\r\nx\r\n'],
  ['key too long', `get ${'k'.repeat(251)}\r\n`],
  ['get without key', 'get\r\n'],
  ['stats noreply', 'stats noreply\r\n'],
  ['verbosity', 'verbosity 1\r\n'],
  ['verbosity noreply', 'verbosity noreply\r\nverbosity\r\n'],
  ['too large', `set big 0 0 1048577\r\n${'a'.repeat(1048577)}\r\nversion\r\n`],
  // Last: memcached 1.6.18 closes the connection here (wirecache answers ERROR, as memccapable expects).
  ['quit with argument', 'quit now\r\n'],
];

async function main(): Promise<void> {
  const memcached = await startMemcached();
  const port = memcached.port;
  try {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    let received = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
    const out: { label: string; request: string; response: string }[] = [];
    for (const [label, request] of REQUESTS) {
      received = Buffer.alloc(0);
      socket.write(request, 'latin1');
      // memcached answers within a few ms on loopback; 150 ms of silence ends an answer (or a noreply).
      let last = -1;
      while (received.length !== last) {
        last = received.length;
        await new Promise((r) => setTimeout(r, 150));
      }
      out.push({ label, request: Buffer.from(request, 'latin1').toString('hex'), response: received.toString('hex') });
    }
    socket.destroy();
    const file = path.join(import.meta.dirname, '..', 'test', 'fixtures', 'memcached_text.json');
    await fs.writeFile(file, `${JSON.stringify({ server: 'memcached 1.6.18 (Debian bookworm)', exchanges: out }, null, 1)}\n`);
    console.log(`wrote ${out.length} exchanges to ${file}`);
  } finally {
    await stopMemcached(memcached);
  }
}

await main();
