import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capability } from '../src/protocol/constants.js';
import { encodePacket } from '../src/protocol/framing.js';
import { ResponseKind, ResponseScanner, ScanResult } from '../src/protocol/response_scanner.js';
import { startCli, writeTemp, yamlFor, type CliProcess } from './cli-process.js';
import { RawClient } from './raw-client.js';
import { getTopology } from './topology-context.js';

/**
 * A 1 GiB result streams through a separate wirecache process to a client
 * that stops reading for a while. The proxy must stop reading the backend
 * while the client is slow (backpressure), so its memory stays bounded.
 */
const topo = getTopology();
let proc: CliProcess;

function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

beforeAll(async () => {
  proc = await startCli(['--config', await writeTemp('bp.yaml', yamlFor(topo, 'log: { level: info }\n'))]);
});

afterAll(() => {
  proc?.child.kill('SIGKILL');
});

describe('backpressure', () => {
  it('relays a 1 GiB result to a slow reader with bounded proxy memory', async () => {
    const pid = proc.child.pid!;
    const client = await RawClient.login(proc.port, 'app', 'app_pw', { database: 'wc_test', deprecateEof: true });
    const baseline = rssBytes(pid);
    let peak = baseline;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, rssBytes(pid));
      } catch {
        /* process gone: the assertions below fail on their own */
      }
    }, 50);

    const rows = 1024;
    const rowBytes = 1024 * 1024;
    const scanner = new ResponseScanner();
    scanner.begin(ResponseKind.Query, (client.capabilities & Capability.DEPRECATE_EOF) !== 0);
    let received = 0;
    const done = new Promise<void>((resolve, reject) => {
      const sink: Buffer[] = [];
      client.socket.removeAllListeners('data');
      client.socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        sink.length = 0;
        try {
          if (scanner.feed(chunk, sink) === ScanResult.Done) resolve();
        } catch (err) {
          reject(err);
        }
      });
      client.socket.once('close', () => reject(new Error(`connection closed after ${received} bytes`)));
    });
    client.socket.write(encodePacket(Buffer.from(`\x03SELECT REPEAT('x', ${rowBytes}) AS v FROM seq_1_to_${rows}`), 0));

    // Stall: read nothing for two seconds while the server keeps producing.
    client.socket.pause();
    await new Promise((r) => setTimeout(r, 2000));
    const duringStall = peak;
    client.socket.resume();
    await done;
    clearInterval(sampler);

    expect(scanner.rows).toBe(rows);
    expect(received).toBeGreaterThan(rows * rowBytes);
    // Stalled client: the proxy held at most a few socket buffers, not the stream.
    expect(duringStall - baseline).toBeLessThan(64 * 1024 * 1024);
    expect(peak - baseline).toBeLessThan(128 * 1024 * 1024);
    console.log(`1 GiB relayed; proxy RSS baseline ${(baseline / 2 ** 20).toFixed(0)} MiB, peak ${(peak / 2 ** 20).toFixed(0)} MiB`);

    // The session is still in sync afterwards.
    client.socket.removeAllListeners('data');
    client.close();
  }, 120_000);
});
