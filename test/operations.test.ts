/**
 * Operating a running wirecache: hot reload (POST /reload and SIGHUP on the
 * real CLI process), the admin token, /readyz, and metric families that must
 * move by exactly the traffic sent.
 */
import fs from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { startApp, type RunningApp } from '../src/app.js';
import { loadConfig, parseConfig } from '../src/config/load.js';
import { ConfigError } from '../src/config/yaml_locations.js';
import { createLogger } from '../src/logger.js';
import { startCli, writeTemp, yamlFor } from './cli-process.js';
import { connect, routingConfig, testCacheConfig, testConfig } from './proxy-harness.js';
import { getTopology } from './topology-context.js';

const topo = getTopology();
type Row = mysql.RowDataPacket;

/** One sample of a metric line (`name{labels} value`), 0 when absent. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

const rules = (cacheItems: boolean) => `cache:
  mode: hinted
  rules:
    - name: ops-items
      match: { tables: ops_items }
      cache: ${cacheItems}
`;

describe('hot reload', () => {
  let app: RunningApp;
  let file: string;
  const logs: Record<string, unknown>[] = [];
  let client: mysql.Connection;
  const scrape = async () => (await fetch(`http://127.0.0.1:${app.adminAddress.port}/metrics`)).text();
  const hits = async () => sample(await scrape(), 'wirecache_cache_hits_total{rule="ops-items"}');
  const read = async () => {
    const [rows] = await client.query<Row[]>('SELECT v FROM ops_items WHERE id = 1');
    return rows[0].v as number;
  };

  beforeAll(async () => {
    const root = await connect(topo.primary.port, topo, { user: 'root' });
    await root.query('CREATE TABLE IF NOT EXISTS wc_test.ops_items (id INT PRIMARY KEY, v INT)');
    await root.query('REPLACE INTO wc_test.ops_items VALUES (1, 5)');
    await root.end();
    file = await writeTemp('reload.yaml', yamlFor(topo, rules(true)));
    app = await startApp(loadConfig(file), createLogger('info', { destination: { write: (line: string) => void logs.push(JSON.parse(line)) } }));
    client = await connect(app.mysqlAddress.port, topo);
  });

  afterAll(async () => {
    await client?.end();
    await app?.stop();
  });

  it('refuses an invalid file with its error and keeps the running rules', async () => {
    await read();
    expect(await read()).toBe(5);
    const hitsBefore = await hits();
    expect(hitsBefore).toBeGreaterThan(0);
    await fs.writeFile(file, yamlFor(topo, rules(true).replace('cache: true', 'cache: maybe')));
    const res = await fetch(`http://127.0.0.1:${app.adminAddress.port}/reload`, { method: 'POST' });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { reloaded: boolean; error: string };
    expect(body.reloaded).toBe(false);
    expect(body.error).toMatch(/reload\.yaml:\d+:\d+: field cache\.rules\[0\]\.cache: /);
    expect(sample(await scrape(), 'wirecache_config_reloads_total{result="failure"}')).toBe(1);
    // Still cached by the old rule, on the same connection.
    expect(await read()).toBe(5);
    expect(await hits()).toBe(hitsBefore + 1);
  });

  it('applies a valid change to the next statement while the client stays connected, and says what needs a restart', async () => {
    const hitsBefore = await hits();
    await fs.writeFile(file, yamlFor(topo, rules(false)).replace('port: 0 }\nadmin', 'port: 1 }\nadmin'));
    const res = await fetch(`http://127.0.0.1:${app.adminAddress.port}/reload`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ reloaded: true, changed: ['cache.rules', 'listen.port'], restart_needed: ['listen'] });
    // The log line says what changed, with the same key names as the HTTP answer.
    const line = logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('config reloaded'));
    expect(line).toMatchObject({ level: 'warn', changed: ['cache.rules', 'listen.port'], restart_needed: ['listen'], file });
    expect(line).not.toHaveProperty('restartNeeded');
    expect(await read()).toBe(5);
    expect(await read()).toBe(5);
    expect(await hits()).toBe(hitsBefore);
    expect(sample(await scrape(), 'wirecache_config_reloads_total{result="success"}')).toBe(1);
    const [[{ alive }]] = await client.query<Row[]>('SELECT 1 AS alive');
    expect(alive).toBe(1);
  });

  it('reloads on SIGHUP in the real process, refusing a broken file and keeping the old config', async () => {
    const cliFile = await writeTemp('hup.yaml', yamlFor(topo, `log: { level: info }\n${rules(true)}`));
    const proc = await startCli(['--config', cliFile]);
    try {
      await fs.writeFile(cliFile, 'listen: [unclosed\n');
      proc.child.kill('SIGHUP');
      await expect.poll(() => proc.output(), { timeout: 10_000 }).toMatch(/config reload refused/);
      await fs.writeFile(cliFile, yamlFor(topo, `log: { level: info }\n${rules(false)}`));
      proc.child.kill('SIGHUP');
      await expect.poll(() => proc.output(), { timeout: 10_000 }).toMatch(/"msg":"config reloaded"/);
      // Not a terminal: one JSON object per line.
      const lines = proc.output().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.find((l) => l.msg === 'config reloaded')).toMatchObject({ level: 'info', changed: ['cache.rules'], restart_needed: [] });
      // One startup banner; no second line about the admin listener.
      const banners = lines.filter((l) => l.msg === 'wirecache started');
      expect(banners).toHaveLength(1);
      expect(banners[0]).toMatchObject({
        version: expect.stringMatching(/^\d+\.\d+\.\d+/),
        config: cliFile,
        listen: `127.0.0.1:${proc.port}`,
        admin: `http://127.0.0.1:${proc.adminPort}`,
        backends: [`primary 127.0.0.1:${topo.primary.port} (primary)`],
        cache: 'memory',
        cache_rules: 1,
      });
      expect(lines.filter((l) => /admin (server|listener)/.test(String(l.msg)))).toEqual([]);
      const text = await (await fetch(`http://127.0.0.1:${proc.adminPort}/metrics`)).text();
      expect(sample(text, 'wirecache_config_reloads_total{result="failure"}')).toBe(1);
      expect(sample(text, 'wirecache_config_reloads_total{result="success"}')).toBe(1);
      expect(proc.child.exitCode).toBeNull();
    } finally {
      proc.child.kill('SIGTERM');
      await proc.exited;
    }
  });
});

describe('admin API access', () => {
  it('refuses to start on a non-loopback address without a token', () => {
    const yaml = yamlFor(topo).replace('admin: { host: 127.0.0.1, port: 0 }', 'admin: { host: 0.0.0.0, port: 0 }');
    expect(() => parseConfig(yaml, 'open.yaml')).toThrow(ConfigError);
    expect(() => parseConfig(yaml, 'open.yaml')).toThrow(/admin\.host: is not a loopback address: set admin\.token/);
  });

  it('refuses requests without the token when bound beyond loopback, and answers probes without one', async () => {
    const token = 'correct-horse-battery-staple';
    const app = await startApp(testConfig(topo, { admin: { host: '0.0.0.0', port: 0, token } }), createLogger('error'));
    const url = (p: string) => `http://127.0.0.1:${app.adminAddress.port}${p}`;
    try {
      for (const p of ['/metrics', '/servers', '/stats/queries', '/explain?sql=SELECT+1']) {
        expect((await fetch(url(p))).status).toBe(401);
        expect((await fetch(url(p), { headers: { Authorization: 'Bearer wrong-token-of-some-length' } })).status).toBe(401);
        expect((await fetch(url(p), { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
      }
      expect((await fetch(url('/reload'), { method: 'POST' })).status).toBe(401);
      expect((await fetch(url('/cache/purge?all=1'), { method: 'POST' })).status).toBe(401);
      expect((await fetch(url('/healthz'))).status).toBe(200);
      expect((await fetch(url('/readyz'))).status).toBe(200);
    } finally {
      await app.stop();
    }
  });

  it('refuses a reload that would drop the token while the listener stays beyond loopback', async () => {
    const token = 'correct-horse-battery-staple';
    const open = yamlFor(topo).replace('admin: { host: 127.0.0.1, port: 0 }', `admin: { host: 0.0.0.0, port: 0, token: ${token} }`);
    expect(open).toContain(token);
    const file = await writeTemp('token-reload.yaml', open);
    const app = await startApp(loadConfig(file), createLogger('error'));
    const url = (p: string) => `http://127.0.0.1:${app.adminAddress.port}${p}`;
    try {
      // Valid on its own (a loopback address needs no token), but the listener keeps 0.0.0.0 until a restart.
      await fs.writeFile(file, yamlFor(topo));
      const reload = await fetch(url('/reload'), { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
      expect(reload.status).toBe(422);
      expect(((await reload.json()) as { error: string }).error).toMatch(/admin\.token cannot be removed while the admin API listens on 0\.0\.0\.0/);
      expect((await fetch(url('/metrics'))).status).toBe(401);
      expect((await fetch(url('/metrics'), { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
      // The same through SIGHUP's path.
      expect(await app.reload()).toMatchObject({ ok: false });
      expect((await fetch(url('/servers'))).status).toBe(401);
    } finally {
      await app.stop();
    }
  });
});

describe('/readyz', () => {
  it('is ready with a reachable primary and not ready without one, while /healthz stays ok', async () => {
    const up = await startApp(testConfig(topo, routingConfig(topo)), createLogger('error'));
    const down = await startApp(
      testConfig(topo, { backends: [{ name: 'gone', host: '127.0.0.1', port: 1, role: 'primary', weight: 1 }] }),
      createLogger('error'),
    );
    try {
      const ready = await fetch(`http://127.0.0.1:${up.adminAddress.port}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ok', detail: { primary: 'primary', state: 'primary' } });
      const notReady = await fetch(`http://127.0.0.1:${down.adminAddress.port}/readyz`);
      expect(notReady.status).toBe(503);
      expect(await notReady.json()).toMatchObject({ status: 'unavailable', detail: { primary: 'gone' } });
      expect((await fetch(`http://127.0.0.1:${down.adminAddress.port}/healthz`)).status).toBe(200);
    } finally {
      await up.stop();
      await down.stop();
    }
  });
});

describe('metrics around known traffic', () => {
  it('moves statements by route, routed reasons, cache refusals, bytes and backend connections by exactly what was sent', async () => {
    const root = await connect(topo.primary.port, topo, { user: 'root' });
    await root.query('CREATE TABLE IF NOT EXISTS wc_test.ops_m (id INT PRIMARY KEY, v INT)');
    await root.query('REPLACE INTO wc_test.ops_m VALUES (1, 1)');
    await root.end();
    // Without multiplexing: the session's backend connections are counted below as it holds them.
    const app = await startApp(
      testConfig(topo, { ...routingConfig(topo), cache: testCacheConfig(), pool: { ...testConfig(topo).pool, multiplexing: false } }),
      createLogger('error'),
    );
    const scrape = async () => (await fetch(`http://127.0.0.1:${app.adminAddress.port}/metrics`)).text();
    const c = await connect(app.mysqlAddress.port, topo);
    try {
      const before = await scrape();
      await c.query('/*qc=on*/ SELECT v FROM ops_m WHERE id = 1'); // miss: filled from the primary
      await c.query('/*qc=on*/ SELECT v FROM ops_m WHERE id = 1'); // hit
      await c.query('/*qc=on*/ SELECT v FROM ops_m WHERE id = 1'); // hit
      await c.query('/*qc=on*/ SELECT NOW()'); // refused: non_deterministic, read from a replica
      await c.query('SELECT v FROM ops_m WHERE id = 1'); // replica
      await c.query('UPDATE ops_m SET v = v + 1 WHERE id = 1'); // primary, a write
      const after = await scrape();
      const delta = (series: string) => sample(after, series) - sample(before, series);
      expect(delta('wirecache_statements_total{route="cache"}')).toBe(2);
      expect(delta('wirecache_statements_total{route="replica"}')).toBe(2);
      expect(delta('wirecache_statements_total{route="primary"}')).toBe(2);
      expect(delta('wirecache_statement_duration_seconds_count{route="cache"}')).toBe(2);
      expect(delta('wirecache_cache_hits_total{rule="hint"}')).toBe(2);
      expect(delta('wirecache_cache_misses_total{rule="hint"}')).toBe(1);
      expect(delta('wirecache_cache_refused_total{rule="hint",reason="non_deterministic"}')).toBe(1);
      expect(delta('wirecache_routed_statements_total{destination="primary",server="primary",reason="cache_fill"}')).toBe(1);
      expect(delta('wirecache_routed_statements_total{destination="primary",server="primary",reason="write"}')).toBe(1);
      const replicaReads =
        delta('wirecache_routed_statements_total{destination="replica",server="replica1",reason="read"}') +
        delta('wirecache_routed_statements_total{destination="replica",server="replica2",reason="read"}');
      expect(replicaReads).toBe(2);
      expect(delta('wirecache_queries_total{command="COM_QUERY"}')).toBe(6);
      expect(delta('wirecache_client_received_bytes_total')).toBeGreaterThan(6 * 30);
      expect(delta('wirecache_client_sent_bytes_total')).toBeGreaterThan(0);
      // One session: its primary connection and one per replica it read from, all idle between commands.
      const open = ['primary', 'replica1', 'replica2'].reduce((n, s) => n + sample(after, `wirecache_backend_connections{server="${s}",state="open"}`), 0);
      const idle = ['primary', 'replica1', 'replica2'].reduce((n, s) => n + sample(after, `wirecache_backend_connections{server="${s}",state="idle"}`), 0);
      expect(open).toBe(3);
      expect(idle).toBe(3);
      expect(sample(after, 'wirecache_backend_connections{server="primary",state="open"}')).toBe(1);
      // Digest statistics saw the same traffic.
      const stats = (await (await fetch(`http://127.0.0.1:${app.adminAddress.port}/stats/queries`)).json()) as {
        digests: { digest: string; count: number; cache_hits: number; cache_misses: number; destinations: Record<string, number> }[];
      };
      // The hinted and the plain SELECT share a digest (comments are not part of it).
      const select = stats.digests.find((d) => d.digest === 'SELECT V FROM ops_m WHERE ID = ?');
      expect(select).toMatchObject({ count: 4, cache_hits: 2, cache_misses: 1, destinations: { cache: 2, primary: 1, replica: 1 } });
    } finally {
      await c.end();
      await app.stop();
    }
  });
});
