import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminServer } from '../src/admin/admin_server.js';
import { Metrics } from '../src/metrics/metrics.js';

/** The value of one sample line `name{labels} value` in Prometheus text, or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const prefix = labels ? `${name}{${labels}} ` : `${name} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

/** Sends raw bytes and collects everything the server answers until it closes. */
function rawRequest(port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('end', () => resolve(received));
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
    socket.setTimeout(5000, () => {
      socket.destroy();
      reject(new Error(`no answer; got so far: ${JSON.stringify(received)}`));
    });
    socket.write(data);
  });
}

describe('Metrics and AdminServer', () => {
  const metrics = new Metrics({ backendNames: ['primary', 'replica-1'] });
  let healthy: boolean | 'throw' = true;
  const server = new AdminServer({
    host: '127.0.0.1',
    port: 0,
    metrics,
    health: () => {
      if (healthy === 'throw') throw new Error('health probe exploded');
      return { ok: healthy, detail: { backends: { primary: healthy ? 'up' : 'down' } } };
    },
  });
  let base = '';
  let port = 0;

  beforeAll(async () => {
    const addr = await server.start();
    expect(addr.host).toBe('127.0.0.1');
    expect(addr.port).toBeGreaterThan(0);
    port = addr.port;
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await server.stop();
  });

  async function scrape(): Promise<string> {
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    return res.text();
  }

  it('exports every family, with known label values at 0, before anything happens', async () => {
    // A fresh instance behind its own server: "before anything happens" whatever ran before.
    const fresh = new Metrics({ backendNames: ['primary', 'replica-1'] });
    const own = new AdminServer({ host: '127.0.0.1', port: 0, metrics: fresh, health: () => ({ ok: true }) });
    const { port: ownPort } = await own.start();
    let res: Response;
    let text: string;
    try {
      res = await fetch(`http://127.0.0.1:${ownPort}/metrics`);
      text = await res.text();
    } finally {
      await own.stop();
    }
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(fresh.contentType);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sample(text, 'wirecache_client_connections')).toBe(0);
    expect(sample(text, 'wirecache_client_connections_total')).toBe(0);
    expect(sample(text, 'wirecache_client_connections_refused_total', 'reason="max_connections"')).toBe(0);
    expect(sample(text, 'wirecache_client_connections_refused_total', 'reason="shutting_down"')).toBe(0);
    for (const reason of ['bad_credentials', 'backend_refused', 'backend_unavailable']) {
      expect(sample(text, 'wirecache_client_auth_failures_total', `reason="${reason}"`)).toBe(0);
    }
    expect(sample(text, 'wirecache_backend_connect_errors_total', 'backend="primary"')).toBe(0);
    expect(sample(text, 'wirecache_backend_connect_errors_total', 'backend="replica-1"')).toBe(0);
    expect(text).toContain('# TYPE wirecache_queries_total counter');
    expect(text).toContain('# TYPE wirecache_query_duration_seconds histogram');
    expect(text).toContain('# TYPE wirecache_client_connections gauge');
    // prom-client's default process/runtime metrics
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
  });

  it('moves exactly the counters the hooks report', async () => {
    metrics.clientConnected();
    metrics.clientConnected();
    metrics.clientConnected();
    metrics.clientDisconnected();
    metrics.clientRefused('max_connections');
    metrics.clientRefused('max_connections');
    metrics.clientRefused('shutting_down');
    metrics.authFailed('bad_credentials');
    metrics.commandCompleted('COM_QUERY', 0.0002);
    metrics.commandCompleted('COM_QUERY', 0.003);
    metrics.commandCompleted('COM_QUERY', 2);
    metrics.commandCompleted('COM_PING', 0.00001);
    metrics.backendConnectError('primary');
    metrics.backendConnectError('primary');

    const text = await scrape();
    expect(sample(text, 'wirecache_client_connections')).toBe(2);
    expect(metrics.openClientConnections).toBe(2);
    expect(sample(text, 'wirecache_client_connections_total')).toBe(3);
    expect(sample(text, 'wirecache_client_connections_refused_total', 'reason="max_connections"')).toBe(2);
    expect(sample(text, 'wirecache_client_connections_refused_total', 'reason="shutting_down"')).toBe(1);
    expect(sample(text, 'wirecache_client_auth_failures_total', 'reason="bad_credentials"')).toBe(1);
    expect(sample(text, 'wirecache_client_auth_failures_total', 'reason="backend_refused"')).toBe(0);
    expect(sample(text, 'wirecache_queries_total', 'command="COM_QUERY"')).toBe(3);
    expect(sample(text, 'wirecache_queries_total', 'command="COM_PING"')).toBe(1);
    expect(sample(text, 'wirecache_query_duration_seconds_count', 'command="COM_QUERY"')).toBe(3);
    expect(sample(text, 'wirecache_query_duration_seconds_sum', 'command="COM_QUERY"')).toBeCloseTo(2.0032, 6);
    expect(sample(text, 'wirecache_query_duration_seconds_bucket', 'le="0.00005",command="COM_QUERY"')).toBe(0);
    expect(sample(text, 'wirecache_query_duration_seconds_bucket', 'le="0.00025",command="COM_QUERY"')).toBe(1);
    expect(sample(text, 'wirecache_query_duration_seconds_bucket', 'le="0.005",command="COM_QUERY"')).toBe(2);
    expect(sample(text, 'wirecache_query_duration_seconds_bucket', 'le="2.5",command="COM_QUERY"')).toBe(3);
    expect(sample(text, 'wirecache_query_duration_seconds_bucket', 'le="10",command="COM_QUERY"')).toBe(3);
    expect(sample(text, 'wirecache_query_duration_seconds_bucket', 'le="+Inf",command="COM_QUERY"')).toBe(3);
    expect(sample(text, 'wirecache_query_duration_seconds_bucket', 'le="0.00005",command="COM_PING"')).toBe(1);
    expect(sample(text, 'wirecache_backend_connect_errors_total', 'backend="primary"')).toBe(2);
    expect(sample(text, 'wirecache_backend_connect_errors_total', 'backend="replica-1"')).toBe(0);
  });

  it('keeps label values bounded and the gauge non-negative', async () => {
    // Its own instance: what earlier tests reported to the shared one does not matter here.
    const own = new Metrics({ defaultMetrics: false });
    own.commandCompleted('COM_QUERY', 0.25);
    own.commandCompleted('SELECT * FROM secrets WHERE id = 1', 0.001);
    own.commandCompleted('COM_QUERY', Number.NaN);
    own.clientConnected();
    own.clientConnected();
    for (let i = 0; i < 5; i++) own.clientDisconnected();
    const text = await own.metricsText();
    expect(sample(text, 'wirecache_queries_total', 'command="other"')).toBe(1);
    expect(text).not.toContain('secrets');
    // A nonsense duration still counts the command, as 0 seconds.
    expect(sample(text, 'wirecache_queries_total', 'command="COM_QUERY"')).toBe(2);
    expect(sample(text, 'wirecache_query_duration_seconds_sum', 'command="COM_QUERY"')).toBeCloseTo(0.25, 9);
    expect(sample(text, 'wirecache_query_duration_seconds_bucket', 'le="0.00005",command="COM_QUERY"')).toBe(1);
    expect(sample(text, 'wirecache_client_connections')).toBe(0);
    expect(own.openClientConnections).toBe(0);
    own.clientConnected();
    expect(sample(await own.metricsText(), 'wirecache_client_connections')).toBe(1);
  });

  it('reads the proxy-wide figures at scrape time: client bytes, backend connections, remembered classifications', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const memo = { hits: 5, misses: 2, entries: 2, bytes: 2300 };
    m.watchProxy({
      clientTraffic: () => ({ received: 100, sent: 250 }),
      backendConnections: () => new Map([['primary', { open: 3, idle: 1 }]]),
      statementMemo: () => memo,
    });
    let text = await m.metricsText();
    expect(sample(text, 'wirecache_client_sent_bytes_total')).toBe(250);
    expect(sample(text, 'wirecache_backend_connections', 'server="primary",state="idle"')).toBe(1);
    expect(sample(text, 'wirecache_classifier_cache_lookups_total', 'outcome="hit"')).toBe(5);
    expect(sample(text, 'wirecache_classifier_cache_lookups_total', 'outcome="miss"')).toBe(2);
    expect(sample(text, 'wirecache_classifier_cache_bytes')).toBe(2300);
    memo.hits = 9;
    memo.bytes = 1100;
    text = await m.metricsText();
    expect(sample(text, 'wirecache_classifier_cache_lookups_total', 'outcome="hit"')).toBe(9);
    expect(sample(text, 'wirecache_classifier_cache_bytes')).toBe(1100);
  });

  it('keeps separate registries per instance', async () => {
    const queries = async () => sample(await scrape(), 'wirecache_queries_total', 'command="COM_QUERY"') ?? 0;
    const before = await queries();
    const a = new Metrics({ defaultMetrics: false });
    const b = new Metrics({ defaultMetrics: false });
    a.commandCompleted('COM_QUERY', 0.001);
    a.commandCompleted('COM_QUERY', 0.001);
    b.commandCompleted('COM_QUERY', 0.001);
    const textA = await a.metricsText();
    expect(sample(textA, 'wirecache_queries_total', 'command="COM_QUERY"')).toBe(2);
    expect(textA).not.toContain('process_cpu_user_seconds_total');
    expect(sample(await b.metricsText(), 'wirecache_queries_total', 'command="COM_QUERY"')).toBe(1);
    // The server's own instance did not move.
    expect(await queries()).toBe(before);
  });

  it('answers /healthz with 200 when healthy and 503 otherwise', async () => {
    healthy = true;
    let res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.json()).toEqual({ status: 'ok', detail: { backends: { primary: 'up' } } });

    healthy = false;
    res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'unavailable', detail: { backends: { primary: 'down' } } });

    healthy = 'throw';
    res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'error', error: 'health probe exploded' });
    healthy = true;
  });

  it('answers 404 for unknown paths and 405 for wrong methods', async () => {
    let res = await fetch(`${base}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'not found' });

    res = await fetch(`${base}/metrics/`);
    expect(res.status).toBe(404);
    await res.arrayBuffer();

    res = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
    expect(await res.json()).toEqual({ error: 'method not allowed' });

    res = await fetch(`${base}/healthz?verbose=1`, { method: 'DELETE' });
    expect(res.status).toBe(405);
    await res.arrayBuffer();

    res = await fetch(`${base}/healthz?verbose=1`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });

  it('serves routes added later, and turns handler failures into 500', async () => {
    server.addRoute('GET', '/echo', ({ query }) => ({ json: { q: query.get('q') } }));
    server.addRoute('POST', '/boom', () => {
      throw new Error('boom');
    });
    expect(() => server.addRoute('get', '/echo', () => ({}))).toThrow(/already registered/);

    let res = await fetch(`${base}/echo?q=hello%20world`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ q: 'hello world' });

    res = await fetch(`${base}/boom`, { method: 'POST' });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: 'internal error' });
  });

  it('answers malformed requests with 400 and keeps serving', async () => {
    // HTTP connections to the admin server are not client connections (whatever earlier tests left on the gauge).
    const clientsBefore = sample(await scrape(), 'wirecache_client_connections');
    expect(clientsBefore).toBeTypeOf('number');
    const garbage = await rawRequest(port, 'THIS IS NOT HTTP\r\n\x00\x01\x02\r\n\r\n');
    expect(garbage).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(garbage).toContain('{"error":"bad request"}');

    const badTarget = await rawRequest(port, 'GET http://[::1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(badTarget).toMatch(/^HTTP\/1\.1 400 /);

    const badHeader = await rawRequest(port, 'GET /metrics HTTP/1.1\r\nHo st: x\r\n\r\n');
    expect(badHeader).toMatch(/^HTTP\/1\.1 400 /);

    const absolute = await rawRequest(port, `GET http://127.0.0.1:${port}/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(absolute).toMatch(/^HTTP\/1\.1 200 OK\r\n/);

    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    expect(sample(await scrape(), 'wirecache_client_connections')).toBe(clientsBefore);
  });
});

describe('AdminServer lifecycle', () => {
  it('stops promptly with keep-alive connections open, and can be stopped twice', async () => {
    const server = new AdminServer({
      host: '127.0.0.1',
      port: 0,
      metrics: new Metrics({ defaultMetrics: false }),
      health: () => ({ ok: true }),
    });
    const { port } = await server.start();
    await expect(server.start()).rejects.toThrow(/already started/);
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(await res.json()).toEqual({ status: 'ok' });
    const started = Date.now();
    await server.stop();
    expect(Date.now() - started).toBeLessThan(1500);
    await server.stop();
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it('rejects start() when the port is taken', async () => {
    const first = new AdminServer({ host: '127.0.0.1', port: 0, metrics: new Metrics({ defaultMetrics: false }), health: () => ({ ok: true }) });
    const { port } = await first.start();
    const second = new AdminServer({ host: '127.0.0.1', port, metrics: new Metrics({ defaultMetrics: false }), health: () => ({ ok: true }) });
    await expect(second.start()).rejects.toThrow(/EADDRINUSE/);
    await first.stop();
  });
});
