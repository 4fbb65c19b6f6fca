/**
 * The demo (scripts/demo.ts, what the README's first command runs) as its own
 * process: its seeded table shows a cached read and its invalidation, SIGHUP
 * reloads the config, and SIGTERM removes everything it started (the
 * mariadbd servers, memcached, the temporary folder).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { TextClient } from './memcached-api-harness.js';
import { describe, expect, it } from 'vitest';
import { runCommand } from './run-command.js';

const ROOT = path.resolve(import.meta.dirname, '..');

async function until<T>(what: string, get: () => T | undefined | null | false, timeoutMs: number, output: () => string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; output:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Command lines of the running processes that mention `dir`. */
async function processesUnder(dir: string): Promise<string[]> {
  const r = await runCommand('ps', ['-eo', 'args=']);
  return r.stdout.split('\n').filter((l) => l.includes(dir) && !l.startsWith('ps '));
}

describe('the demo', () => {
  it('seeds a table, reloads on SIGHUP, and on SIGTERM stops its servers and removes its folder', { timeout: 180_000 }, async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/demo.ts')], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, WIRECACHE_DEMO_PORT: '0', WIRECACHE_DEMO_ADMIN_PORT: '0', WIRECACHE_DEMO_MEMCACHED_PORT: '0' },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const output = () => out;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const baseDir = await until('the demo to start', () => /removes (\S+)\n/.exec(out)?.[1], 120_000, output);
      const port = Number(/-P(\d+) -uapp/.exec(out)![1]);
      const adminUrl = /curl -s (http:\/\/[\d.]+:\d+)\/cache/.exec(out)![1];
      expect(out).toMatch(/SELECT \* FROM demo_items/);
      expect(await processesUnder(baseDir)).not.toEqual([]);

      // The seeded table: a hinted read is cached, a write invalidates it.
      const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'app', password: 'app_pw', database: 'wc_test' });
      const read = async () => ((await c.query('/*qc=on*/ SELECT price FROM demo_items WHERE id = 1'))[0] as { price: string }[])[0].price;
      const hits = async () => ((await (await fetch(`${adminUrl}/cache`)).json()) as { rules: { hits: number }[] }).rules.reduce((n, r) => n + r.hits, 0);
      expect(await read()).toBe('0.50');
      const before = await hits();
      expect(await read()).toBe('0.50');
      expect(await hits()).toBe(before + 1);
      await c.query('UPDATE demo_items SET price = price + 1 WHERE id = 1');
      expect(await read()).toBe('1.50');

      // The memcached API: what it stores is a row of wc_test.sessions.
      const mcPort = Number(/the memcached API on :(\d+)/.exec(out)![1]);
      const mc = await TextClient.connect(mcPort);
      expect(await mc.call('set greeting 0 0 5\r\nhello\r\n')).toBe('STORED\r\n');
      expect(await mc.get('get greeting\r\n')).toBe('VALUE greeting 0 5\r\nhello\r\nEND\r\n');
      mc.close();
      const [rows] = await c.query("SELECT CAST(value AS CHAR) AS v FROM sessions WHERE id = 'greeting'");
      expect(rows).toEqual([{ v: 'hello' }]);
      await c.end();

      child.kill('SIGHUP');
      await until('the reload', () => /"msg":"config reloaded/.test(out), 20_000, output);
      expect(child.exitCode).toBe(null);

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      await expect(fs.access(baseDir)).rejects.toThrow();
      expect(await processesUnder(baseDir)).toEqual([]);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
