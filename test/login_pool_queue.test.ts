/**
 * The login pool's limits and queue, with stand-in connections (no server):
 * first come, first served; a waiter blocked by its account's share does not
 * hold up the others; a wait ends in ERR 1040 or 1203 at queue_timeout; and
 * every slot comes back when a connection ends.
 */
import { describe, expect, it } from 'vitest';
import type { BackendConnection, BackendLogin } from '../src/backend/backend_connection.js';
import { LoginPool } from '../src/backend/login_pool.js';
import { PoolExhaustedError, type LoginPoolOptions } from '../src/backend/pool_limits.js';

const endpoint = { name: 'primary', host: '10.0.0.1', port: 3306 };

function login(user: string): BackendLogin {
  return { user, passwordSha1: null, database: 'd', characterSet: 45, capabilities: 0, mariaDbCapabilities: 0, connectAttributes: null, tls: null, trackSession: false };
}

/** What the pool uses of a connection: its endpoint, closed, onEnd, quit and destroy. */
function standIn(): BackendConnection & { end(): void } {
  const listeners: (() => void)[] = [];
  const conn = {
    endpoint,
    closed: false,
    onEnd(l: () => void) {
      listeners.push(l);
    },
    end() {
      conn.closed = true;
      for (const l of listeners.splice(0)) l();
    },
    quit() {
      conn.end();
    },
    destroy() {
      conn.end();
    },
    // What keeping, lending and resetting use.
    capabilities: 0,
    busy: false,
    // Something other than plain reads ran on it: handed to anyone else only after a reset.
    dirty: true,
    inheritedDiagnostics: false,
    resets: 0,
    attach() {},
    detach() {},
    async resetSession(statements: string[]) {
      return { error: null, results: statements.map(() => ({ error: null, rows: [] })) };
    },
  };
  return conn as unknown as BackendConnection & { end(): void };
}

function pool(options: Partial<LoginPoolOptions>): { pool: LoginPool; waits: string[] } {
  const waits: string[] = [];
  const p = new LoginPool(
    { maxIdlePerServer: 10, idleTimeoutMs: 60_000, maxConnectionsPerServer: 0, maxConnectionsPerUser: 0, queueTimeoutMs: 1000, ...options },
    { loginSaved: () => {}, released: () => {}, waited: (_server, outcome) => waits.push(outcome), resetOutcome: () => {} },
  );
  return { pool: p, waits };
}

const settle = () => new Promise((r) => setTimeout(r, 20));

describe('the login pool queue', () => {
  it('serves waiters first come, first served, as connections end', async () => {
    const { pool: p, waits } = pool({ maxConnectionsPerServer: 1 });
    const first = await p.acquire(endpoint, login('a'), async () => standIn());
    const order: string[] = [];
    const second = p.acquire(endpoint, login('b'), async () => standIn()).then((c) => (order.push('b'), c));
    const third = p.acquire(endpoint, login('c'), async () => standIn()).then((c) => (order.push('c'), c));
    await settle();
    expect(p.usage('primary')).toEqual({ open: 1, idle: 0, waiting: 2 });
    (first as unknown as { end(): void }).end();
    const b = await second;
    expect(order).toEqual(['b']);
    (b as unknown as { end(): void }).end();
    await third;
    expect(order).toEqual(['b', 'c']);
    expect(waits).toEqual(['served', 'served']);
    expect(p.usage('primary')).toEqual({ open: 1, idle: 0, waiting: 0 });
  });

  it('lets a waiter through while one ahead of it is blocked by its own account\'s share', async () => {
    const { pool: p } = pool({ maxConnectionsPerServer: 2, maxConnectionsPerUser: 1, queueTimeoutMs: 200 });
    await p.acquire(endpoint, login('a'), async () => standIn());
    const b = await p.acquire(endpoint, login('b'), async () => standIn());
    const a2 = p.acquire(endpoint, login('a'), async () => standIn()).then(
      () => 'got one',
      (err: Error) => err,
    );
    const c = p.acquire(endpoint, login('c'), async () => standIn());
    await settle();
    (b as unknown as { end(): void }).end(); // room on the server, but not for a's second connection
    await c;
    const refused = await a2;
    expect(refused).toBeInstanceOf(PoolExhaustedError);
    expect((refused as PoolExhaustedError).serverError?.code).toBe(1203);
    expect(p.usage('primary')).toEqual({ open: 2, idle: 0, waiting: 0 });
  });

  it('ends a wait with ERR 1040 at queue_timeout, and a failed connect gives its slot back', async () => {
    const { pool: p, waits } = pool({ maxConnectionsPerServer: 1, queueTimeoutMs: 50 });
    await expect(p.acquire(endpoint, login('a'), async () => Promise.reject(new Error('refused')))).rejects.toThrow('refused');
    expect(p.usage('primary').open).toBe(0);
    await p.acquire(endpoint, login('a'), async () => standIn());
    const err = (await p.acquire(endpoint, login('b'), async () => standIn()).then(
      () => null,
      (e: unknown) => e,
    )) as PoolExhaustedError;
    expect(err).toBeInstanceOf(PoolExhaustedError);
    expect(err.serverError).toMatchObject({ code: 1040, sqlState: '08004' });
    expect(err.message).toMatch(/Too many connections: wirecache's pool for 'primary' has all 1 connections in use \(waited \d+ ms\)/);
    expect(waits).toEqual(['timeout']);
    expect(p.usage('primary')).toEqual({ open: 1, idle: 0, waiting: 0 });
  });

  it('lets waiters in when a reload raises the limit', async () => {
    const { pool: p } = pool({ maxConnectionsPerServer: 1, queueTimeoutMs: 5000 });
    await p.acquire(endpoint, login('a'), async () => standIn());
    const waiting = p.acquire(endpoint, login('b'), async () => standIn());
    await settle();
    p.reconfigure({ maxIdlePerServer: 10, idleTimeoutMs: 60_000, maxConnectionsPerServer: 2, maxConnectionsPerUser: 0, queueTimeoutMs: 5000 });
    await waiting;
    expect(p.usage('primary')).toEqual({ open: 2, idle: 0, waiting: 0 });
  });
});

/** A session lending connections: it holds what it lent until the pool takes it (surrender). */
function lender(): { surrender(conn: BackendConnection): boolean; holds: Set<BackendConnection>; surrendered: BackendConnection[] } {
  const l = {
    holds: new Set<BackendConnection>(),
    surrendered: [] as BackendConnection[],
    surrender(conn: BackendConnection): boolean {
      if (!l.holds.delete(conn)) return false;
      l.surrendered.push(conn);
      return true;
    },
  };
  return l;
}

describe('lending (multiplexing)', () => {
  it('lets a session take back what it lent, unreset; at the limit anyone else gets it reset, after the session lets go', async () => {
    const { pool: p } = pool({ maxConnectionsPerServer: 1 });
    const a = lender();
    const b = lender();
    const conn = await p.acquire(endpoint, login('u'), async () => standIn());
    a.holds.add(conn);
    p.lend(conn, login('u'), a);
    expect(p.usage('primary')).toEqual({ open: 1, idle: 1, waiting: 0 });
    // Its own session: the same connection, no reset; no other session can reclaim it.
    expect(p.reclaim(conn, b)).toBe(false);
    expect(p.reclaim(conn, a)).toBe(true);
    expect(p.usage('primary')).toEqual({ open: 1, idle: 0, waiting: 0 });
    expect(conn.resets).toBe(0);
    p.lend(conn, login('u'), a);
    // Anyone else (a login, another session) at the limit: the lender lets go, then the reset.
    expect(await p.acquire(endpoint, login('u'), async () => standIn())).toBe(conn);
    expect(a.surrendered).toEqual([conn]);
    expect(conn.resets).toBe(1);
    expect(p.reclaim(conn, a)).toBe(false);
    // Lent by b now, after b changed something on it: the next one gets it reset, not b's state.
    b.holds.add(conn);
    conn.dirty = true;
    p.lend(conn, login('u'), b);
    expect(await p.acquire(endpoint, login('u'), async () => standIn())).toBe(conn);
    expect(conn.resets).toBe(2);
    // Another login never gets it at all.
    a.holds.add(conn);
    p.lend(conn, login('u'), a);
    const fresh = p.acquire(endpoint, login('v'), async () => standIn()).then(
      (c) => c,
      (e: Error) => e,
    );
    expect(await fresh).not.toBe(conn);
  });

  it('forgets a lent connection its session no longer has (dropped, closed) instead of handing it out', async () => {
    const { pool: p } = pool({ maxConnectionsPerServer: 2 });
    const a = lender();
    const dropped = await p.acquire(endpoint, login('u'), async () => standIn());
    const held = await p.acquire(endpoint, login('u'), async () => standIn());
    p.lend(dropped, login('u'), a); // a does not hold it: its session dropped it meanwhile
    a.holds.add(held);
    p.lend(held, login('u'), a);
    expect(await p.acquire(endpoint, login('u'), async () => standIn())).toBe(held);
    expect(p.usage('primary')).toEqual({ open: 2, idle: 0, waiting: 0 });
    expect(dropped.resets).toBe(0);
  });

  it('below the limits opens a new connection rather than reset another session\'s lent one', async () => {
    const { pool: p } = pool({});
    const a = lender();
    const conn = await p.acquire(endpoint, login('u'), async () => standIn());
    a.holds.add(conn);
    p.lend(conn, login('u'), a);
    const other = await p.acquire(endpoint, login('u'), async () => standIn());
    expect(other).not.toBe(conn);
    expect(conn.resets).toBe(0);
    expect(p.usage('primary')).toEqual({ open: 2, idle: 1, waiting: 0 });
    expect(a.surrendered).toEqual([]);
  });

  it('hands a connection that ran only plain reads to the next client without a reset, its diagnostics marked inherited', async () => {
    const { pool: p } = pool({ maxConnectionsPerServer: 1 });
    const a = lender();
    const conn = await p.acquire(endpoint, login('u'), async () => standIn());
    conn.dirty = false;
    a.holds.add(conn);
    p.lend(conn, login('u'), a);
    expect(await p.acquire(endpoint, login('u'), async () => standIn())).toBe(conn);
    expect(conn.resets).toBe(0);
    expect(conn.inheritedDiagnostics).toBe(true);
    // A client leaving it dirty: the next one gets it reset, flags cleared.
    conn.dirty = true;
    await p.release(conn, login('u'));
    expect(conn.resets).toBe(1);
    expect([conn.dirty, conn.inheritedDiagnostics]).toEqual([false, false]);
    expect(p.take(endpoint, login('u'))).toBe(conn);
    // Clean when it leaves: kept as it is.
    await p.release(conn, login('u'));
    expect(conn.resets).toBe(1);
    expect(conn.inheritedDiagnostics).toBe(true);
    expect(p.usage('primary')).toEqual({ open: 1, idle: 1, waiting: 0 });
  });

  it('takes a connection its session has not taken back within 100 to 200 ms, and resets it for anyone', async () => {
    const { pool: p } = pool({});
    const a = lender();
    const first = await p.acquire(endpoint, login('u'), async () => standIn());
    const second = await p.acquire(endpoint, login('u'), async () => standIn());
    a.holds.add(first);
    a.holds.add(second);
    p.lend(first, login('u'), a);
    await settle();
    p.lend(second, login('u'), a);
    expect(p.reclaim(second, a)).toBe(true);
    await settle();
    expect(first.resets).toBe(0);
    await new Promise((r) => setTimeout(r, 250));
    // Taken from the session and reset: kept for anyone of the same login.
    expect(a.surrendered).toEqual([first]);
    expect([first.resets, second.resets]).toEqual([1, 0]);
    expect(p.reclaim(first, a)).toBe(false);
    expect(p.usage('primary')).toEqual({ open: 2, idle: 1, waiting: 0 });
    expect(await p.acquire(endpoint, login('u'), async () => standIn())).toBe(first);
  });
});
