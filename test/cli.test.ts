import { describe, expect, it } from 'vitest';
import mysql from 'mysql2/promise';
import { runCli, startCli, writeTemp, yamlFor } from './cli-process.js';
import { getTopology } from './topology-context.js';

const topo = getTopology();

describe('wirecache command line', () => {
  it('check-config accepts a valid file and rejects a broken one with file, line and field', { timeout: 120_000 }, async () => {
    const good = await writeTemp('good.yaml', yamlFor(topo));
    const bad = await writeTemp('bad.yaml', yamlFor(topo, 'limits:\n  max_client_conections: 5\n'));
    const broken = await writeTemp('broken.yaml', 'listen: [unclosed\n');
    // Each run starts a process; run them side by side.
    const [ok, refused, syntax, missing] = await Promise.all([
      runCli(['check-config', good]),
      runCli(['check-config', bad]),
      runCli(['--config', broken]),
      runCli(['--config', '/nonexistent/wirecache.yaml']),
    ]);
    expect(ok.code).toBe(0);
    expect(ok.output).toMatch(/good\.yaml: OK \(1 backend\(s\), 4 user\(s\)/);
    expect(refused.code).toBe(2);
    expect(refused.output).toMatch(/bad\.yaml:\d+:\d+: field limits\.max_client_conections: /);
    expect(syntax.code).toBe(2);
    expect(syntax.output).toMatch(/broken\.yaml:\d+:\d+: /);
    expect(missing.code).toBe(2);
    expect(missing.output).toMatch(/\/nonexistent\/wirecache\.yaml/);
  });

  it('prints its version', async () => {
    const v = await runCli(['--version']);
    expect(v.code).toBe(0);
    expect(v.output.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('serves clients, /metrics and /healthz, and on SIGTERM lets the query in flight finish', async () => {
    const file = await writeTemp('run.yaml', yamlFor(topo, 'log: { level: info }\n'));
    const proc = await startCli(['--config', file]);
    try {
      const health = await fetch(`http://127.0.0.1:${proc.adminPort}/healthz`);
      expect(health.status).toBe(200);
      // Accounts configured only by their mysql.user hash log in, and the proxy logs in to the backend for them.
      for (const [user, password] of [['other', 'other_pw'], ['limited', 'limited_pw']]) {
        const h = await mysql.createConnection({ host: '127.0.0.1', port: proc.port, user, password, database: 'wc_test' });
        expect((await h.query('SELECT CURRENT_USER() AS u'))[0]).toEqual([{ u: `${user}@%` }]);
        await h.end();
      }
      const c = await mysql.createConnection({ host: '127.0.0.1', port: proc.port, user: 'app', password: 'app_pw', database: 'wc_test' });
      expect((await c.query('SELECT 1 AS one'))[0]).toEqual([{ one: 1 }]);
      const metrics = await (await fetch(`http://127.0.0.1:${proc.adminPort}/metrics`)).text();
      expect(metrics).toMatch(/wirecache_queries_total\{command="COM_QUERY"\} [1-9]/);
      expect(metrics).toMatch(/wirecache_client_connections 1\b/);
      const running = c.query('SELECT SLEEP(1) AS slept');
      await new Promise((r) => setTimeout(r, 200));
      proc.child.kill('SIGTERM');
      expect((await running)[0]).toEqual([{ slept: 0 }]);
      expect(await proc.exited).toBe(0);
      expect(proc.output()).toMatch(/"msg":"shutting down/);
      c.destroy();
    } finally {
      proc.child.kill('SIGKILL');
    }
  });
});
