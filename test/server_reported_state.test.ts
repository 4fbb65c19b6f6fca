/**
 * Session state changed where the SQL text does not show it (EXECUTE
 * IMMEDIATE, a SET whose value is a subquery, a multi-statement, a
 * procedure, a stored function, a role set through EXECUTE IMMEDIATE, state
 * set after COM_RESET_CONNECTION): the server reports it on the backend
 * connection, and what a client reads through wirecache (cache in `mode:
 * all`, reads split over replicas) equals what the server answers directly
 * after the same statements.
 */
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForReplication } from '../scripts/topology.js';
import { plainUser } from '../src/config/accounts.js';
import { Command } from '../src/protocol/constants.js';
import { ResponseKind } from '../src/protocol/response_scanner.js';
import { connect, routingConfig, startProxy, testCacheConfig, testConfig, type RunningProxy } from './proxy-harness.js';
import { disableGeneralLog, enableGeneralLog, serverRan } from './general-log.js';
import { RawClient } from './raw-client.js';
import { getTopology } from './topology-context.js';

const topo = getTopology();
type Row = mysql.RowDataPacket;
let px: RunningProxy;

/** The rows of `sql` as text, or the error number. */
async function answer(conn: mysql.Connection, sql: string): Promise<unknown> {
  try {
    const [rows] = await conn.query<Row[]>(sql);
    return (rows as Row[]).map((r) => Object.values(r).map((v) => (v === null ? null : String(v))));
  } catch (err) {
    return { error: (err as { errno?: number }).errno };
  }
}

const open = (port: number, user = 'app', password = 'app_pw') =>
  mysql.createConnection({ host: '127.0.0.1', port, user, password, database: 'wc_test', multipleStatements: true });

/** PIPES_AS_CONCAT turns `'a' || 'b'` from 0 into 'ab': a cached answer under the wrong sql_mode shows at once. */
const PROBE = "SELECT 'a' || 'b' AS v";
/**
 * A routine runs with the sql_mode it was created with and the server puts
 * the caller's back afterwards: routines are probed with div_precision_increment.
 */
const DIVISION = { probe: 'SELECT 1 / 3 AS v', before: '0.3333', after: '0.3333333' };

beforeAll(async () => {
  const root = await connect(topo.primary.port, topo, { user: 'root', multipleStatements: true });
  await root.query(`
    DROP PROCEDURE IF EXISTS wc_test.srs_set_mode;
    CREATE PROCEDURE wc_test.srs_set_mode() BEGIN SET div_precision_increment = 7; END;
    DROP FUNCTION IF EXISTS wc_test.srs_fn_mode;
    CREATE FUNCTION wc_test.srs_fn_mode() RETURNS INT NO SQL BEGIN SET @@session.div_precision_increment = 7; RETURN 1; END;
    CREATE TABLE IF NOT EXISTS wc_test.srs_secret (id INT PRIMARY KEY, v VARCHAR(20));
    REPLACE INTO wc_test.srs_secret VALUES (1, 'only the role');
    DROP ROLE IF EXISTS srs_reader;
    CREATE ROLE srs_reader;
    GRANT SELECT ON wc_test.srs_secret TO srs_reader;
    DROP USER IF EXISTS 'srs_user'@'%';
    CREATE USER 'srs_user'@'%' IDENTIFIED BY 'srs_pw';
    CREATE TABLE IF NOT EXISTS wc_test.srs_probe (id INT);
    GRANT SELECT ON wc_test.srs_probe TO 'srs_user'@'%';
    GRANT srs_reader TO 'srs_user'@'%';
  `);
  await root.end();
  await waitForReplication(topo);
  px = await startProxy(topo, {
    ...routingConfig(topo),
    users: [...testConfig(topo).users, plainUser('srs_user', 'srs_pw')],
    cache: testCacheConfig({ mode: 'all' }),
  });
});

afterAll(async () => {
  await px?.stop();
});

/** Runs `setup` then the probe on a proxied and a direct session, with a bystander's probe before and after; all must agree. */
async function agrees(setup: string, probe = { probe: PROBE, before: '0', after: 'ab' }): Promise<void> {
  const bystander = await open(px.port);
  const before = await answer(bystander, probe.probe);
  expect(before).toEqual([[probe.before]]);
  const proxied = await open(px.port);
  const direct = await open(topo.primary.port);
  await proxied.query(setup);
  await direct.query(setup);
  const expected = await answer(direct, probe.probe);
  expect(expected).toEqual([[probe.after]]);
  // Twice: the second may be a hit, which must be this session's own.
  expect(await answer(proxied, probe.probe)).toEqual(expected);
  expect(await answer(proxied, probe.probe)).toEqual(expected);
  expect(await answer(bystander, probe.probe)).toEqual(before);
  for (const c of [bystander, proxied, direct]) await c.end();
}

describe('state the text does not show, through the cache and the split', () => {
  it('EXECUTE IMMEDIATE', async () => {
    await agrees("EXECUTE IMMEDIATE 'SET sql_mode = ''PIPES_AS_CONCAT'''");
  });

  it('a SET whose value is a subquery', async () => {
    await agrees("SET sql_mode = (SELECT 'PIPES_AS_CONCAT')");
  });

  it('a multi-statement', async () => {
    await agrees("SELECT 1; SET sql_mode = 'PIPES_AS_CONCAT'; SELECT 2");
  });

  it('a procedure', async () => {
    await agrees('CALL srs_set_mode()', DIVISION);
  });

  it('a stored function called by a read (which may run on a replica)', async () => {
    await agrees('SELECT srs_fn_mode()', DIVISION);
  });

  it('a client that turns its own tracking off (as text, or as a prepared SET) and then sets a variable: still followed', async () => {
    for (const turnOff of [
      (c: mysql.Connection) => c.query("SET session_track_system_variables = ''"),
      (c: mysql.Connection) => c.execute('SET session_track_system_variables = ?', ['']),
    ]) {
      const bystander = await open(px.port);
      expect(await answer(bystander, DIVISION.probe)).toEqual([[DIVISION.before]]);
      const proxied = await open(px.port);
      const direct = await open(topo.primary.port);
      for (const c of [proxied, direct]) {
        await turnOff(c);
        await c.query('SET div_precision_increment = 7');
      }
      expect(await answer(direct, DIVISION.probe)).toEqual([[DIVISION.after]]);
      for (let i = 0; i < 2; i++) expect(await answer(proxied, DIVISION.probe)).toEqual([[DIVISION.after]]);
      expect(await answer(bystander, DIVISION.probe)).toEqual([[DIVISION.before]]);
      for (const c of [bystander, proxied, direct]) await c.end();
    }
  });

  it('a role set through EXECUTE IMMEDIATE is never served to a session without it', async () => {
    const withRole = await open(px.port, 'srs_user', 'srs_pw');
    const without = await open(px.port, 'srs_user', 'srs_pw');
    const direct = await open(topo.primary.port, 'srs_user', 'srs_pw');
    const read = 'SELECT v FROM wc_test.srs_secret';
    expect(await answer(without, read)).toEqual({ error: 1142 });
    await withRole.query("EXECUTE IMMEDIATE 'SET ROLE srs_reader'");
    await direct.query("EXECUTE IMMEDIATE 'SET ROLE srs_reader'");
    expect(await answer(direct, read)).toEqual([['only the role']]);
    expect(await answer(withRole, read)).toEqual([['only the role']]);
    expect(await answer(withRole, read)).toEqual([['only the role']]);
    expect(await answer(without, read)).toEqual({ error: 1142 });
    for (const c of [withRole, without, direct]) await c.end();
  });

  it('state set after COM_RESET_CONNECTION is tracked as before the reset', async () => {
    const proxied = await RawClient.login(px.port, 'app', 'app_pw', { database: 'wc_test' });
    const direct = await RawClient.login(topo.primary.port, 'app', 'app_pw', { database: 'wc_test' });
    const bystander = await open(px.port);
    expect(await answer(bystander, PROBE)).toEqual([['0']]);
    for (const c of [proxied, direct]) {
      await c.command(Buffer.from([Command.RESET_CONNECTION]), ResponseKind.Single);
      await c.query("EXECUTE IMMEDIATE 'SET sql_mode = ''PIPES_AS_CONCAT'''");
    }
    for (let i = 0; i < 2; i++) expect((await proxied.query(PROBE)).toString('hex')).toBe((await direct.query(PROBE)).toString('hex'));
    expect((await direct.query(PROBE)).toString('latin1')).toContain('ab');
    expect(await answer(bystander, PROBE)).toEqual([['0']]);
    proxied.close();
    direct.close();
    await bystander.end();
  });
});

describe('views: a cached read of a view depends on its base tables', () => {
  it('a write to the base table (through the proxy) is seen through a view created before and one created after the proxy started', async () => {
    const root = await connect(topo.primary.port, topo, { user: 'root', multipleStatements: true });
    const c = await open(px.port);
    const direct = await open(topo.primary.port);
    try {
      await root.query(`
        CREATE OR REPLACE TABLE wc_test.srs_base (id INT PRIMARY KEY, v INT);
        INSERT INTO wc_test.srs_base VALUES (1, 10), (2, 20);
        CREATE OR REPLACE VIEW wc_test.srs_view_old AS SELECT id, v FROM wc_test.srs_base WHERE id = 1;
      `);
      // Created directly: read by the next refresh (the binlog reader's DDL event, or every 30 s).
      await px.proxy.views!.refresh();
      // Created through the proxy, after it started: read before the CREATE's reply.
      await c.query('CREATE OR REPLACE VIEW srs_view_new AS SELECT SUM(v) AS total FROM srs_view_old');
      const hits = px.metrics.cache.value('hits', 'all');
      await waitForReplication(topo);
      const reads = ['SELECT v FROM srs_view_old', 'SELECT total FROM srs_view_new'];
      for (let i = 1; i <= 3; i++) {
        for (const sql of reads) {
          // Twice: the second is a hit.
          expect(await answer(c, sql), sql).toEqual(await answer(direct, sql));
          expect(await answer(c, sql), sql).toEqual(await answer(direct, sql));
        }
        await c.query('UPDATE srs_base SET v = v + 1 WHERE id = 1');
        await waitForReplication(topo);
      }
      for (const sql of reads) expect(await answer(c, sql), sql).toEqual(await answer(direct, sql));
      expect(await answer(c, 'SELECT v FROM srs_view_old')).toEqual([['13']]);
      expect(px.metrics.cache.value('hits', 'all')).toBeGreaterThanOrEqual(hits + 6);
    } finally {
      await c.end();
      await direct.end();
      await root.end();
    }
  });
});

describe('read-your-writes from the tracked GTID', () => {
  it('a read after a write waits for the GTID the write reported, without asking the primary for it', async () => {
    const root = await connect(topo.primary.port, topo, { user: 'root' });
    await enableGeneralLog(root);
    const asked = () => serverRan(root, 'SELECT @@last_gtid');
    try {
      const c = await open(px.port);
      await c.query('CREATE TABLE IF NOT EXISTS srs_ryw (id INT PRIMARY KEY, v INT)');
      await c.query('REPLACE INTO srs_ryw VALUES (1, 0)');
      const before = await asked();
      const onReplicas = () => topo.replicas.reduce((n, r) => n + px.metrics.routing.routedCount('replica', r.name, 'read'), 0);
      const replicaReads = onReplicas();
      for (let i = 1; i <= 20; i++) {
        await c.query('UPDATE srs_ryw SET v = ? WHERE id = 1', [i]);
        expect(await answer(c, `/*qc=off*/ SELECT v FROM srs_ryw WHERE id = 1`)).toEqual([[String(i)]]);
      }
      await c.end();
      expect(onReplicas()).toBeGreaterThan(replicaReads);
      expect(await asked()).toBe(before);
    } finally {
      await disableGeneralLog(root);
      await root.end();
    }
  });
});
