/**
 * The live dashboard on the admin listener:
 *
 *   GET /dashboard   one HTML page (src/admin/dashboard_page.ts) that reads /metrics, /cache,
 *                    /servers and /stats/queries every few seconds (?refresh=N seconds, 1..60, default 3)
 *
 * It is behind the admin token like every other path. Without the token, a
 * browser gets the 401 with a page that asks for it (TOKEN_PAGE_HTML) instead
 * of the JSON error; that page holds no data.
 */
import type { AdminResponse, AdminServer } from './admin_server.js';
import { DASHBOARD_CSP, DASHBOARD_HTML, TOKEN_PAGE_HTML } from './dashboard_page.js';

const HTML_HEADERS = {
  'Content-Security-Policy': DASHBOARD_CSP,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

const html = (body: string): AdminResponse => ({ body, contentType: 'text/html; charset=utf-8', headers: HTML_HEADERS });

export function registerDashboardRoutes(admin: AdminServer): void {
  admin.addRoute('GET', '/dashboard', () => html(DASHBOARD_HTML));
  admin.setUnauthorizedPage('/dashboard', () => html(TOKEN_PAGE_HTML));
}
