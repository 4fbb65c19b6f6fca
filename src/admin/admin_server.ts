/**
 * The admin HTTP listener: Prometheus metrics and a health check, plus any
 * routes other parts of the proxy register with addRoute().
 *
 *   GET /         the endpoints this listener serves, with a line about each
 *   GET /metrics  Prometheus text exposition of Metrics.registry
 *   GET /healthz  200 {"status":"ok",...} or 503 {"status":"unavailable",...}: the process is alive
 *   GET /readyz   the same shape: the proxy can serve queries (a primary is reachable)
 *
 * With a token, every other path needs `Authorization: Bearer <token>` (401 otherwise).
 * Unknown paths get 404, known paths with another method 405 (with an Allow
 * header), malformed requests 400; all error bodies are JSON
 * {"error": "..."}, except a 401 for a path with a page of its own
 * (setUnauthorizedPage(): /dashboard asks for the token). HEAD is answered
 * wherever GET is. Nothing a client sends can make the server throw or stop
 * serving.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';

export interface HealthStatus {
  ok: boolean;
  /** Anything JSON-serialisable; included as `detail` in the /healthz body. */
  detail?: unknown;
}

export interface AdminServerOptions {
  host: string;
  /** 0 picks a free port; start() returns the real one. */
  port: number;
  metrics: Metrics;
  health: () => HealthStatus;
  /** Readiness (/readyz): can the proxy serve queries now? Defaults to `health`. */
  ready?: () => HealthStatus | Promise<HealthStatus>;
  /**
   * The bearer token every request but /healthz and /readyz must carry
   * (`Authorization: Bearer <token>`); null: no token. Read per request, so a reload can change it.
   */
  token?: () => string | null;
  logger?: Logger;
}

/** What GET / says about each endpoint ("METHOD path"); a route registered without an entry here is listed without one. */
const ENDPOINT_DESCRIPTIONS: Record<string, string> = {
  'GET /': 'this list',
  'GET /metrics': 'Prometheus metrics',
  'GET /healthz': 'liveness: the process answers (no token needed)',
  'GET /readyz': 'readiness: a primary is reachable (no token needed)',
  'GET /dashboard': 'a live dashboard page (HTML) over the endpoints below; it asks for the token in a browser',
  'GET /cache': 'the query cache: each tier and its state, entries, hits and misses by rule',
  'POST /cache/purge': 'drop cached results: ?all=1, ?table=schema.table or ?rule=name',
  'GET /servers': 'the backends as the monitor sees them: state, lag, read rotation',
  'GET /explain': 'how a statement would be handled: ?sql=...[&user=&schema=] (rule, cache decision, route, warnings)',
  'GET /stats/queries': 'per-digest statement statistics (?sort=, ?limit=)',
  'POST /stats/queries/reset': 'clear the statement statistics',
  'POST /reload': 're-read the config file (as SIGHUP does)',
};

/** Probes answer without a token: an orchestrator's health check has none, and they reveal nothing. */
const OPEN_PATHS = new Set(['/healthz', '/readyz']);

/** What a route handler sees of the request. */
export interface AdminRequest {
  /** Upper-case method as sent ("GET", "HEAD", ...). */
  method: string;
  /** Path without the query string, not percent-decoded ("/metrics"). */
  path: string;
  query: URLSearchParams;
  /** The raw request, e.g. to read a body. */
  req: IncomingMessage;
}

/** A route's answer. Give `json` (sent as application/json) or `body`. */
export interface AdminResponse {
  status?: number;
  json?: unknown;
  body?: string | Buffer;
  /** For `body`; default "text/plain; charset=utf-8". */
  contentType?: string;
  headers?: Record<string, string>;
}

export type AdminRouteHandler = (request: AdminRequest) => AdminResponse | Promise<AdminResponse>;

export class AdminServer {
  private readonly opts: AdminServerOptions;
  private readonly routes = new Map<string, Map<string, AdminRouteHandler>>();
  /** Paths whose 401 (GET and HEAD) has a body of their own: see setUnauthorizedPage(). */
  private readonly unauthorizedPages = new Map<string, () => AdminResponse>();
  private server: Server | undefined;
  private address: { host: string; port: number } | undefined;

  constructor(opts: AdminServerOptions) {
    this.opts = opts;
    this.addRoute('GET', '/metrics', async () => ({
      status: 200,
      body: await this.opts.metrics.metricsText(),
      contentType: this.opts.metrics.contentType,
    }));
    this.addRoute('GET', '/healthz', () => this.healthResponse(this.opts.health));
    this.addRoute('GET', '/readyz', () => this.healthResponse(this.opts.ready ?? this.opts.health));
    this.addRoute('GET', '/', () => ({ json: { name: 'wirecache admin API', endpoints: this.endpoints() } }));
  }

  /** Every registered route, sorted by path, with its description. */
  endpoints(): { method: string; path: string; description: string | null }[] {
    const list: { method: string; path: string; description: string | null }[] = [];
    for (const [path, byMethod] of this.routes) {
      for (const method of byMethod.keys()) list.push({ method, path, description: ENDPOINT_DESCRIPTIONS[`${method} ${path}`] ?? null });
    }
    return list.sort((a, b) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method));
  }

  /**
   * Registers a handler for an exact path ("/cache/stats") and method. A GET
   * route also answers HEAD. Throws if the route already exists.
   */
  addRoute(method: string, path: string, handler: AdminRouteHandler): void {
    const m = method.toUpperCase();
    if (!path.startsWith('/')) throw new Error(`admin route path must start with "/": ${path}`);
    let byMethod = this.routes.get(path);
    if (!byMethod) {
      byMethod = new Map();
      this.routes.set(path, byMethod);
    }
    if (byMethod.has(m)) throw new Error(`admin route ${m} ${path} is already registered`);
    byMethod.set(m, handler);
  }

  /**
   * For a GET or HEAD of `path` without the token: the body (and headers)
   * of the 401 instead of the JSON error, e.g. an HTML page that asks for
   * the token. The status stays 401 with WWW-Authenticate, and the route's
   * own handler is not called.
   */
  setUnauthorizedPage(path: string, page: () => AdminResponse): void {
    this.unauthorizedPages.set(path, page);
  }

  /** Starts listening; resolves with the bound address (the real port when 0 was asked). */
  async start(): Promise<{ host: string; port: number }> {
    if (this.server) throw new Error('admin server already started');
    const server = createServer((req, res) => {
      void this.handle(req, res);
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    server.keepAliveTimeout = 5_000;
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.onClientError(err, socket));
    this.server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        server.once('error', onError);
        server.listen(this.opts.port, this.opts.host, () => {
          server.off('error', onError);
          resolve();
        });
      });
    } catch (err) {
      this.server = undefined;
      throw err;
    }
    server.on('error', (err) => this.opts.logger?.error({ err }, 'admin server error'));
    const addr = server.address() as AddressInfo;
    this.address = { host: addr.address, port: addr.port };
    // The app's startup line names the admin address: this one is for debugging only.
    this.opts.logger?.debug(this.address, 'admin server listening');
    return { ...this.address };
  }

  /** Stops listening and closes connections (idle ones at once, busy ones after 2s). */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => server.closeAllConnections(), 2000);
      force.unref();
      server.close(() => {
        clearTimeout(force);
        resolve();
      });
      server.closeIdleConnections();
    });
  }

  private async healthResponse(check: () => HealthStatus | Promise<HealthStatus>): Promise<AdminResponse> {
    let health: HealthStatus;
    try {
      health = await check();
    } catch (err) {
      this.opts.logger?.warn({ err }, 'health check threw');
      return { status: 503, json: { status: 'error', error: (err as Error)?.message ?? String(err) } };
    }
    const body: Record<string, unknown> = { status: health.ok ? 'ok' : 'unavailable' };
    if (health.detail !== undefined) body.detail = health.detail;
    return { status: health.ok ? 200 : 503, json: body };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const target = parseTarget(req.url);
      if (!target) {
        send(res, { status: 400, json: { error: 'bad request' } }, { close: true });
        return;
      }
      const method = (req.method ?? '').toUpperCase();
      const token = this.opts.token?.() ?? null;
      if (token !== null && !OPEN_PATHS.has(target.path) && !bearerMatches(req.headers.authorization, token)) {
        const page = method === 'GET' || method === 'HEAD' ? this.unauthorizedPages.get(target.path) : undefined;
        const body: AdminResponse = page ? page() : { json: { error: 'missing or wrong bearer token (Authorization: Bearer <admin.token>)' } };
        send(res, { ...body, status: 401, headers: { ...body.headers, 'WWW-Authenticate': 'Bearer realm="wirecache"' } });
        return;
      }
      const byMethod = this.routes.get(target.path);
      if (!byMethod) {
        send(res, { status: 404, json: { error: 'not found' } });
        return;
      }
      const handler = byMethod.get(method) ?? (method === 'HEAD' ? byMethod.get('GET') : undefined);
      if (!handler) {
        const allow = new Set(byMethod.keys());
        if (allow.has('GET')) allow.add('HEAD');
        send(res, { status: 405, json: { error: 'method not allowed' }, headers: { Allow: [...allow].join(', ') } });
        return;
      }
      const response = await handler({ method, path: target.path, query: target.query, req });
      send(res, response);
    } catch (err) {
      this.opts.logger?.error({ err, url: req.url, method: req.method }, 'admin request failed');
      if (!res.headersSent) send(res, { status: 500, json: { error: 'internal error' } });
      else res.destroy();
    }
  }

  /** Requests node's HTTP parser rejects (garbage, oversized headers, timeouts). */
  private onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status =
      err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    this.opts.logger?.debug({ code: err.code, status }, 'admin client error');
    const body = JSON.stringify({ error: status === 400 ? 'bad request' : STATUS_CODES[status]?.toLowerCase() });
    // Once the answer is flushed, drop the connection: the parser is gone.
    socket.once('finish', () => socket.destroy());
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
        'Content-Type: application/json\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
  }
}

/** Compares in constant time, so the token cannot be guessed byte by byte from response times. */
function bearerMatches(header: string | undefined, token: string): boolean {
  if (!header || !header.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice(7).trim());
  const wanted = Buffer.from(token);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

/** Splits an origin-form ("/a?b") or absolute-form ("http://h/a?b") target; undefined if malformed. */
function parseTarget(url: string | undefined): { path: string; query: URLSearchParams } | undefined {
  if (!url) return undefined;
  let path: string;
  let search: string;
  if (url.startsWith('/')) {
    const q = url.indexOf('?');
    path = q === -1 ? url : url.slice(0, q);
    search = q === -1 ? '' : url.slice(q + 1);
  } else {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return undefined;
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return undefined;
    path = parsed.pathname;
    search = parsed.search.slice(1);
  }
  const hash = path.indexOf('#');
  if (hash !== -1) path = path.slice(0, hash);
  try {
    return { path, query: new URLSearchParams(search) };
  } catch {
    return undefined;
  }
}

function send(res: ServerResponse, response: AdminResponse, opts: { close?: boolean } = {}): void {
  const status = response.status ?? 200;
  let body: string | Buffer;
  let contentType: string;
  if (response.json !== undefined) {
    body = JSON.stringify(response.json);
    contentType = 'application/json; charset=utf-8';
  } else {
    body = response.body ?? '';
    contentType = response.contentType ?? 'text/plain; charset=utf-8';
  }
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('Cache-Control', 'no-store');
  for (const [name, value] of Object.entries(response.headers ?? {})) res.setHeader(name, value);
  if (opts.close) res.setHeader('Connection', 'close');
  res.end(body);
}
