/**
 * One statement plan (src/plan/statement_plan.ts) serves the session,
 * /explain and `wirecache rules test`: the two reports must say the same of
 * every statement. No database: /explain reads a selector over a monitor
 * view in which every server is up.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { explainStatement } from '../src/admin/explain.js';
import { parseConfig } from '../src/config/load.js';
import { dryRun } from '../src/plan/rules_dry_run.js';
import { readStatements } from '../src/plan/sql_log_reader.js';
import { placeRoute, planRoute, planStatement, type ServerView } from '../src/plan/statement_plan.js';
import { ServerStatus } from '../src/protocol/constants.js';
import type { ServerMonitor } from '../src/routing/server_monitor.js';
import { ServerSelector } from '../src/routing/server_selector.js';
import { classify } from '../src/sql/classifier.js';
import { serverStatus } from './server_status_fixture.js';

const CONFIG = parseConfig(
  `backends:
  - { name: primary, host: 127.0.0.1, port: 3306, role: primary }
  - { name: replica1, host: 127.0.0.1, port: 3307, role: replica }
  - { name: replica2, host: 127.0.0.1, port: 3308, role: replica }
monitor: { user: wirecache_monitor, password: "" }
routing: { consistency: session }
users:
  - { name: app, password: app_pw }
cache:
  mode: hinted
  rules:
    - { name: no-payments, match: { tables: payments }, cache: false }
    - { name: orders, match: { tables: orders }, cache: true, ttl: 10, route: replica2, consistency: eventual }
    - { name: catalog, match: { tables: products }, cache: true, ttl: 300, soft_ttl: 240 }
`,
  '/etc/wirecache/wirecache.yaml',
);

// Every server up and in rotation, the configured primary writable.
const servers = CONFIG.backends.map((b) => ({ ...serverStatus(b, b.role === 'primary' ? 'primary' : 'up'), inRotation: true }));
/** What the selector reads of the monitor: every server up, the configured primary writable. */
const monitor = {
  primary: () => servers[0],
  writableConflict: () => [],
  readTargets: () => servers.slice(1),
  server: (name: string) => servers.find((s) => s.name === name),
  suspect: () => undefined,
} as unknown as ServerMonitor;
const selector = new ServerSelector(CONFIG.backends, monitor);

const FIXTURE = fs.readFileSync(path.resolve(import.meta.dirname, 'fixtures/statements.sql'), 'utf8');

describe('one statement plan', () => {
  it('gives /explain and rules test the same cache verdict and route for every statement of the fixture', () => {
    // Each statement on its own connection: /explain knows no session before the statement either.
    const statements = readStatements(FIXTURE).statements.map((s, i) => ({ ...s, schema: 'shop', connection: i }));
    expect(statements.length).toBeGreaterThan(20);
    const rows = dryRun(CONFIG, statements, { user: 'app' });
    let compared = 0;
    for (const row of rows) {
      const e = explainStatement({ sql: row.sql, user: 'app', schema: 'shop', clientAddress: '127.0.0.1', inTransaction: false }, CONFIG, selector, servers) as any;
      expect({ sql: row.sql, ...e.cache }).toEqual({
        sql: row.sql,
        cached: row.cache.cached,
        label: row.cache.label,
        reason: row.cache.reason,
        detail: row.cache.detail,
        if_chosen: row.cache.ifChosen,
        ttl_seconds: row.cache.ttlSeconds,
        soft_ttl_seconds: row.cache.softTtlSeconds,
      });
      expect({ sql: row.sql, ...e.route }).toMatchObject({
        sql: row.sql,
        target: row.route.target,
        reason: row.route.reason,
        detail: row.route.detail,
        consistency: row.route.consistency,
        on_cache_miss: row.route.onCacheMiss,
      });
      compared++;
    }
    expect(compared).toBe(rows.length);
  });

  it('says not_select for an UPDATE in both reports (they once disagreed)', () => {
    const sql = 'UPDATE products SET price = 2 WHERE id = 1';
    const e = explainStatement({ sql, user: 'app', schema: 'shop', clientAddress: '127.0.0.1', inTransaction: false }, CONFIG, selector, servers) as any;
    const [row] = dryRun(CONFIG, [{ sql, line: 1 }], { user: 'app', schema: 'shop' });
    expect(e.cache.reason).toBe('not_select');
    expect(row.cache.reason).toBe('not_select');
    expect(e.route).toMatchObject({ target: 'primary', reason: 'write', detail: 'update', servers: ['primary'] });
    expect(row.route).toMatchObject({ target: 'primary', reason: 'write', detail: 'update' });
  });

  it('reads a miss of a cached statement from the primary (cache_fill), as the session does', () => {
    const select = classify('SELECT name FROM products WHERE id = 1');
    const pins = { inTransaction: false, pinned: null };
    expect(planRoute(select, null, pins, false)).toMatchObject({ target: { kind: 'replica' }, reason: 'read' });
    expect(planRoute(select, null, pins, true)).toMatchObject({ target: { kind: 'primary' }, reason: 'cache_fill' });
    // A statement that must run on the primary keeps its own reason.
    const update = classify('UPDATE products SET price = 2');
    expect(planRoute(update, null, pins, true)).toMatchObject({ target: { kind: 'primary' }, reason: 'write' });
  });

  it('places a route on the servers of a view: no monitor, no replica, unknown server, writable conflict', () => {
    const view = (over: Partial<ServerView>): ServerView => ({
      monitored: true,
      primary: 'primary',
      conflict: [],
      replicas: ['replica1', 'replica2'],
      source: 'monitor',
      hasServer: (name) => ['primary', 'replica1', 'replica2'].includes(name),
      ...over,
    });
    const read = { target: { kind: 'replica' as const }, reason: 'read' as const, detail: null };
    expect(placeRoute(read, view({}))).toMatchObject({ target: 'replica', reason: 'read', servers: ['replica1', 'replica2'], note: null });
    expect(placeRoute(read, view({ monitored: false }))).toMatchObject({ target: 'primary', reason: 'no_monitor', servers: ['primary'] });
    expect(placeRoute(read, view({ replicas: [] }))).toMatchObject({
      target: 'primary',
      reason: 'no_replica',
      detail: 'read',
      note: 'no replica is in rotation: reads go to the primary',
    });
    expect(placeRoute(read, view({ replicas: [], source: 'config' })).note).toBe('no replica is configured: reads go to the primary');
    const named = { target: { kind: 'server' as const, name: 'replica9' }, reason: 'hint' as const, detail: 'replica9' };
    expect(placeRoute(named, view({}))).toMatchObject({ target: 'replica', note: 'no backend named "replica9": any replica in rotation' });
    const write = { target: { kind: 'primary' as const }, reason: 'write' as const, detail: 'insert' };
    expect(placeRoute(write, view({ primary: null, conflict: ['a', 'b'] }))).toMatchObject({ servers: [], note: 'writes are refused: a and b are all writable' });
  });

  it('plans a transaction read for the primary, with no consistency and no cache fill', () => {
    const plan = planStatement(
      CONFIG,
      {
        sql: 'SELECT name FROM products WHERE id = 1',
        binary: false,
        user: 'app',
        schema: 'shop',
        clientAddress: '127.0.0.1',
        status: ServerStatus.IN_TRANS | ServerStatus.AUTOCOMMIT,
        pins: { inTransaction: true, pinned: null },
      },
      { monitored: true, primary: 'primary', conflict: [], replicas: ['replica1'], source: 'config', hasServer: () => true },
    );
    expect(plan.cache).toMatchObject({ cached: false, reason: 'in_transaction' });
    expect(plan.route).toMatchObject({ target: 'primary', reason: 'transaction', consistency: null, onCacheMiss: null });
  });
});
