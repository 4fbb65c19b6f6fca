/**
 * GET /dashboard without a database: the page and its token page are served
 * as the admin API's access rules say, are self-contained (nothing loaded from
 * elsewhere), and their Content-Security-Policy allows exactly their inline
 * scripts and style. The page against a running proxy, in Chromium:
 * test/dashboard.test.ts.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminServer } from '../src/admin/admin_server.js';
import { registerDashboardRoutes } from '../src/admin/dashboard_routes.js';
import { DASHBOARD_CSP, DASHBOARD_HTML, TOKEN_PAGE_HTML } from '../src/admin/dashboard_page.js';
import { Metrics } from '../src/metrics/metrics.js';

const TOKEN = 'dashboard-test-token-0123';
let token: string | null = TOKEN;
let server: AdminServer;
let base: string;

beforeAll(async () => {
  server = new AdminServer({ host: '127.0.0.1', port: 0, metrics: new Metrics({ defaultMetrics: false }), health: () => ({ ok: true }), token: () => token });
  registerDashboardRoutes(server);
  const { port } = await server.start();
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await server?.stop();
});

const inline = (html: string, tag: 'script' | 'style') => [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => m[1]);
const sha = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

describe('GET /dashboard', () => {
  it('serves the dashboard only with the token; without it, a 401 whose body is a page asking for it', async () => {
    const withToken = await fetch(`${base}/dashboard`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(withToken.status).toBe(200);
    expect(withToken.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(withToken.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    expect(await withToken.text()).toBe(DASHBOARD_HTML);

    for (const headers of [{}, { Authorization: 'Bearer wrong-token-of-some-length' }] as Record<string, string>[]) {
      const refused = await fetch(`${base}/dashboard?refresh=1`, { headers });
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="wirecache"');
      expect(refused.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(refused.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
      const body = await refused.text();
      expect(body).toBe(TOKEN_PAGE_HTML);
      expect(body).not.toContain('data-testid="dashboard"');
    }
    // Another method gets the API's JSON 401; the data endpoints keep theirs.
    const post = await fetch(`${base}/dashboard`, { method: 'POST' });
    expect(post.status).toBe(401);
    expect(await post.json()).toEqual({ error: expect.stringMatching(/bearer token/) });
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).toBe(401);
    expect(metrics.headers.get('content-type')).toMatch(/^application\/json/);
  });

  it('serves the dashboard to anyone when the API has no token', async () => {
    token = null;
    try {
      const res = await fetch(`${base}/dashboard`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(DASHBOARD_HTML);
    } finally {
      token = TOKEN;
    }
  });

  it('is listed by GET /', async () => {
    const res = await fetch(`${base}/`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    const { endpoints } = (await res.json()) as { endpoints: { method: string; path: string; description: string | null }[] };
    expect(endpoints).toContainEqual({ method: 'GET', path: '/dashboard', description: expect.stringMatching(/dashboard/) });
  });
});

describe('the pages', () => {
  it('load nothing from elsewhere, and their policy allows exactly their inline scripts and style', () => {
    for (const html of [DASHBOARD_HTML, TOKEN_PAGE_HTML]) {
      expect(html).not.toMatch(/https?:\/\//);
      expect(html).not.toMatch(/<(script|link|img|iframe)\b[^>]*\b(src|href)=/i);
      expect(html).not.toMatch(/\son[a-z]+=/i); // no inline handlers: the policy would block them
      expect(html).not.toMatch(/\sstyle="/i);
      const scripts = inline(html, 'script');
      const styles = inline(html, 'style');
      expect(scripts).toHaveLength(1);
      expect(styles).toHaveLength(1);
      for (const s of scripts) expect(DASHBOARD_CSP).toContain(sha(s));
      for (const s of styles) expect(DASHBOARD_CSP).toContain(sha(s));
      // The scripts are valid JavaScript (a syntax error would only show in a browser).
      for (const s of scripts) expect(() => new Function(s)).not.toThrow();
    }
    expect(DASHBOARD_CSP).toMatch(/default-src 'none'/);
    expect(DASHBOARD_CSP).toMatch(/connect-src 'self'/);
    expect(DASHBOARD_CSP).not.toMatch(/unsafe-inline|unsafe-eval/);
  });

  it('send the token only in an Authorization header, never in a URL', () => {
    for (const html of [DASHBOARD_HTML, TOKEN_PAGE_HTML]) {
      const script = inline(html, 'script')[0];
      expect(script).toContain("'Bearer ' + token");
      expect(script).toContain('sessionStorage');
      expect(script).not.toMatch(/localStorage|document\.cookie|[?&]token=/);
    }
  });
});
