/** Failed-login throttling per client address and per-user connection limits, through real logins. */
import net from 'node:net';
import mysql from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { LoginThrottle } from '../src/auth/login_throttle.js';
import { connect, passwordOf, startProxy, testConfig } from './proxy-harness.js';
import { getTopology } from './topology-context.js';

const topo = getTopology();

const login = (port: number, user: string, password: string) =>
  mysql.createConnection({ host: '127.0.0.1', port, user, password, database: 'wc_test' }).catch((e: { errno: number; message: string }) => e);

describe('LoginThrottle', () => {
  it('blocks after more than N failures in a minute, forgets them after a minute, and unblocks after the block time', () => {
    let now = 1_000_000;
    const t = new LoginThrottle(3, 5000, () => now);
    expect([t.failed('a'), t.failed('a'), t.failed('a')]).toEqual([false, false, false]);
    expect(t.blockedFor('a')).toBe(0);
    expect(t.failed('a')).toBe(true);
    expect(t.blockedFor('a')).toBe(5000);
    expect(t.blockedFor('b')).toBe(0);
    now += 4999;
    expect(t.blockedFor('a')).toBe(1);
    now += 1;
    expect(t.blockedFor('a')).toBe(0);
    // Failures spread over more than a minute never block.
    expect([t.failed('c'), t.failed('c'), t.failed('c')]).toEqual([false, false, false]);
    now += 60_000;
    expect(t.failed('c')).toBe(false);
    // 0 turns it off.
    const off = new LoginThrottle(0, 5000, () => now);
    for (let i = 0; i < 100; i++) expect(off.failed('d')).toBe(false);
    expect(off.blockedFor('d')).toBe(0);
  });
});

describe('failed-login throttling', () => {
  it('refuses a client address with ERR 1129 after too many wrong passwords, counts it, and lets it in again after the block', async () => {
    const base = testConfig(topo);
    const px = await startProxy(topo, { limits: { ...base.limits, loginFailuresPerMinute: 3, loginBlockSeconds: 2 } });
    try {
      for (let i = 0; i < 4; i++) expect(await login(px.port, 'app', 'wrong')).toMatchObject({ errno: 1045 });
      const blocked = await login(px.port, 'app', 'app_pw');
      expect(blocked).toMatchObject({ errno: 1129 });
      expect((blocked as unknown as Error).message).toMatch(/Host '127\.0\.0\.1' is blocked because of many connection errors; wirecache unblocks it in [12] s/);
      const metrics = await px.metrics.metricsText();
      expect(metrics).toMatch(/wirecache_login_blocks_total 1\b/);
      expect(metrics).toMatch(/wirecache_client_connections_refused_total\{reason="login_throttled"\} 1\b/);
      await new Promise((r) => setTimeout(r, 2100));
      const ok = (await login(px.port, 'app', 'app_pw')) as mysql.Connection;
      const [rows] = await ok.query('SELECT 1 AS one');
      expect(rows).toEqual([{ one: 1 }]);
      await ok.end();
    } finally {
      await px.stop();
    }
  });
});

describe('failed logins per account, and guesses between logins of ones own', () => {
  /** A login from another loopback address (the proxy sees it as another client). */
  const loginFrom = (port: number, from: string, user: string, password: string) =>
    mysql
      .createConnection({ user, password, database: 'wc_test', stream: net.connect({ host: '127.0.0.1', port, localAddress: from }) })
      .catch((e: { errno: number; message: string }) => e);

  it('counts COM_CHANGE_USER guesses though a valid login of ones own comes between them, and blocks the guessed account from every address', async () => {
    const base = testConfig(topo);
    const px = await startProxy(topo, { limits: { ...base.limits, loginFailuresPerMinute: 3, loginBlockSeconds: 30 } });
    const otherPassword = passwordOf(topo, 'other');
    try {
      // Each guess: log in as one's own account (which succeeds), then guess app's password with COM_CHANGE_USER.
      for (let i = 0; i < 4; i++) {
        const own = (await loginFrom(px.port, '127.0.0.40', 'other', otherPassword)) as mysql.Connection;
        expect(own.threadId).toBeGreaterThan(0);
        own.on('error', () => undefined);
        await expect(own.changeUser({ user: 'app', password: `guess-${i}` })).rejects.toMatchObject({ errno: 1045 });
        own.destroy();
      }
      // The address is blocked: the valid logins in between cleared nothing.
      expect(await loginFrom(px.port, '127.0.0.40', 'other', otherPassword)).toMatchObject({ errno: 1129 });
      // The guessed account is blocked from any address, right password or not; other accounts are not.
      const blocked = await loginFrom(px.port, '127.0.0.41', 'app', 'app_pw');
      expect(blocked).toMatchObject({ errno: 3955 });
      expect((blocked as unknown as Error).message).toMatch(/^Access denied for user 'app'@'127\.0\.0\.41'\. Account is blocked for 30 second\(s\) \(\d+ second\(s\) remaining\) due to 3 failed logins in a minute\.$/);
      const fine = (await loginFrom(px.port, '127.0.0.41', 'other', otherPassword)) as mysql.Connection;
      await expect(fine.changeUser({ user: 'app', password: 'app_pw' })).rejects.toMatchObject({ errno: 3955 });
      fine.destroy();
      const metrics = await px.metrics.metricsText();
      expect(metrics).toMatch(/wirecache_account_blocks_total 1\b/);
      expect(metrics).toMatch(/wirecache_login_blocks_total 1\b/);
    } finally {
      await px.stop();
    }
  });
});

describe('max_user_connections', () => {
  it('refuses a user over the limit with ERR 1203, and other users and later logins still get in', async () => {
    const base = testConfig(topo);
    const px = await startProxy(topo, { limits: { ...base.limits, maxUserConnections: 2 } });
    const open: mysql.Connection[] = [];
    try {
      open.push(await connect(px.port, topo), await connect(px.port, topo));
      const third = await login(px.port, 'app', 'app_pw');
      expect(third).toMatchObject({ errno: 1203 });
      expect((third as unknown as Error).message).toMatch(/User app already has more than 'max_user_connections' active connections/);
      open.push(await connect(px.port, topo, { user: 'other' }));
      await open.shift()!.end();
      await new Promise((r) => setTimeout(r, 100));
      open.push(await connect(px.port, topo));
      expect(await px.metrics.metricsText()).toMatch(/wirecache_client_connections_refused_total\{reason="max_user_connections"\} 1\b/);
    } finally {
      await Promise.all(open.map((c) => c.end()));
      await px.stop();
    }
  });
});
