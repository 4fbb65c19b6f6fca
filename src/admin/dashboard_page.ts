/**
 * The live dashboard (GET /dashboard): one static HTML page with its CSS and
 * JavaScript inline, no build step, nothing loaded from elsewhere. The page
 * holds no data: its script reads the admin JSON endpoints (/metrics,
 * /cache, /servers, /stats/queries) every few seconds, with the admin token
 * as `Authorization: Bearer`, and renders them.
 *
 * TOKEN_PAGE_HTML is the body of the 401 a browser gets for /dashboard
 * without the token: a form that asks for it, keeps it in sessionStorage
 * (this tab only), fetches /dashboard with it and shows the answer in place.
 *
 * The scripts are plain ES2020 in strings (no template literals inside, so
 * they can live in this file). Their SHA-256 hashes go into the
 * Content-Security-Policy of both pages, which allows exactly these scripts
 * and styles and connections to this origin, and nothing else.
 */
import { createHash } from 'node:crypto';

/** The sessionStorage key the token is kept under. */
export const DASHBOARD_TOKEN_KEY = 'wirecache.admin_token';

const STYLE = `
:root { color-scheme: light; --ink: #1d2330; --muted: #667085; --line: #e4e7ec; --bg: #f5f6f8; --card: #fff;
  --accent: #2f6fde; --good: #16803c; --warn: #b26a00; --bad: #c0262d; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 16px; padding: 12px 20px; background: #1d2330; color: #fff; }
header h1 { margin: 0; font-size: 18px; font-weight: 600; }
header .meta { color: #c9ced8; font-size: 13px; }
header .err { margin-left: auto; color: #ffb4b4; font-size: 13px; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; padding: 16px 20px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; min-width: 0; }
section.wide { grid-column: 1 / -1; }
h2 { margin: 0 0 8px; font-size: 13px; font-weight: 600; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
h2 .muted { margin-left: 8px; font-weight: 400; text-transform: none; letter-spacing: 0; }
table { width: 100%; border-collapse: collapse; }
th, td { padding: 5px 6px; text-align: right; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-size: 12px; font-weight: 600; color: var(--muted); }
th:first-child, td:first-child { text-align: left; }
td.sql { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; white-space: normal; word-break: break-all; text-align: left; }
tr:last-child td { border-bottom: 0; }
.big { font-size: 28px; font-weight: 600; }
.unit { color: var(--muted); font-size: 13px; margin-left: 4px; }
.bar { height: 8px; background: var(--line); border-radius: 4px; overflow: hidden; min-width: 80px; }
.bar > div { height: 100%; background: var(--accent); width: 0; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; background: var(--line); }
.s-primary, .s-up { background: #dcf5e3; color: var(--good); }
.s-lagging, .s-not_replicating { background: #fff1d6; color: var(--warn); }
.s-down { background: #fde2e2; color: var(--bad); }
.muted { color: var(--muted); }
.row { display: flex; gap: 28px; align-items: baseline; flex-wrap: wrap; margin-bottom: 8px; }
.empty { color: var(--muted); padding: 8px 0; }
form { max-width: 420px; margin: 80px auto; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 20px; }
form input { width: 100%; padding: 8px; font: inherit; margin: 8px 0; }
form button { padding: 6px 14px; font: inherit; }
form .err { color: var(--bad); }
`;

/** The dashboard's script. Reads the token from sessionStorage; no token is needed when the admin API has none. */
const DASHBOARD_SCRIPT = `
'use strict';
(function () {
  var TOKEN_KEY = ${JSON.stringify(DASHBOARD_TOKEN_KEY)};
  var ROUTES = ['cache', 'primary', 'replica'];
  var params = new URLSearchParams(location.search);
  var every = Math.min(60, Math.max(1, Number(params.get('refresh')) || 3));
  var previous = null;
  var refreshes = 0;

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  /** A cell whose data-value is the endpoint's number, unformatted. */
  function cell(testid, value, text) {
    return el('td', { 'data-testid': testid, 'data-value': value === null ? 'null' : value }, text === undefined ? value : text);
  }
  function fmtInt(n) { return String(n); }
  function fmtRatio(r) { return r === null || r === undefined ? '\\u2014' : (r * 100).toFixed(1) + '%'; }
  function fmtQps(q) { return q === null ? '\\u2014' : q.toFixed(1); }
  function fmtBytes(b) {
    if (b < 1024) return b + ' B';
    var units = ['KiB', 'MiB', 'GiB', 'TiB'];
    var v = b / 1024, i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return v.toFixed(1) + ' ' + units[i];
  }
  function fmtMs(s) { return (s * 1000).toFixed(2) + ' ms'; }
  function bar(fraction) {
    var outer = el('div', { 'class': 'bar' });
    var inner = el('div');
    inner.style.width = Math.max(0, Math.min(1, fraction || 0)) * 100 + '%';
    outer.appendChild(inner);
    return outer;
  }
  function fill(tbodyId, rows, emptyText, columns) {
    var body = $(tbodyId);
    body.replaceChildren();
    if (rows.length === 0) {
      var td = el('td', { 'class': 'empty', colspan: columns }, emptyText);
      var tr = el('tr');
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    rows.forEach(function (r) { body.appendChild(r); });
  }

  function Unauthorized() {}
  function get(path, asText) {
    var headers = {};
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = 'Bearer ' + token;
    return fetch(path, { headers: headers, cache: 'no-store' }).then(function (r) {
      if (r.status === 401) throw new Unauthorized();
      if (r.status === 404) return null; // /cache without a cache section, /stats/queries with max_digests 0
      if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
      return asText ? r.text() : r.json();
    });
  }

  /** wirecache_statements_total by route, from the Prometheus text. */
  function statementsByRoute(text) {
    var totals = {};
    ROUTES.forEach(function (r) { totals[r] = 0; });
    text.split('\\n').forEach(function (line) {
      var m = /^wirecache_statements_total\\{([^}]*)\\}\\s+(\\S+)/.exec(line);
      if (!m) return;
      var route = /(?:^|,)route="([^"]*)"/.exec(m[1]);
      if (route) totals[route[1]] = Number(m[2]);
    });
    return totals;
  }

  function renderRoutes(totals, at) {
    var interval = previous ? (at - previous.at) / 1000 : null;
    var sum = null;
    var rows = ROUTES.map(function (route) {
      var prev = previous ? previous.totals[route] : null;
      var qps = interval && interval > 0 && prev !== null && totals[route] >= prev ? (totals[route] - prev) / interval : null;
      if (qps !== null) sum = (sum || 0) + qps;
      var tr = el('tr', { 'data-testid': 'route-row', 'data-route': route });
      tr.appendChild(el('td', null, route));
      var q = cell('qps', qps, fmtQps(qps));
      q.setAttribute('data-previous', prev === null ? 'null' : prev);
      q.setAttribute('data-interval', interval === null ? 'null' : interval);
      tr.appendChild(q);
      tr.appendChild(cell('total', totals[route], fmtInt(totals[route])));
      return tr;
    });
    fill('routes', rows, '', 3);
    $('qps-total').textContent = fmtQps(sum);
    $('qps-total').setAttribute('data-value', sum === null ? 'null' : sum);
    previous = { at: at, totals: totals };
  }

  function renderCache(cache) {
    $('cache-off').hidden = cache !== null;
    $('cache-on').hidden = cache === null;
    $('rules-off').hidden = cache !== null;
    $('rules-on').hidden = cache === null;
    if (cache === null) return;
    var mem = cache.memory;
    $('cache-storage').textContent = cache.storage + ', mode ' + cache.mode;
    var bytes = $('cache-bytes');
    bytes.textContent = fmtBytes(mem.bytes);
    bytes.setAttribute('data-value', mem.bytes);
    var max = $('cache-max-bytes');
    max.textContent = mem.max_bytes > 0 ? fmtBytes(mem.max_bytes) : 'memcached only';
    max.setAttribute('data-value', mem.max_bytes);
    var entries = $('cache-entries');
    entries.textContent = fmtInt(mem.entries);
    entries.setAttribute('data-value', mem.entries);
    var holder = $('cache-bar');
    holder.replaceChildren(bar(mem.max_bytes > 0 ? mem.bytes / mem.max_bytes : 0));
    fill('tiers', cache.tiers.map(function (t) {
      var tr = el('tr', { 'data-testid': 'tier-row', 'data-tier': t.tier });
      tr.appendChild(el('td', null, t.tier));
      var s = el('td', { 'data-testid': 'state' });
      s.appendChild(el('span', { 'class': 'badge s-' + (t.state === 'up' ? 'up' : 'down') }, t.state));
      tr.appendChild(s);
      return tr;
    }), 'no tiers', 2);
    var rules = cache.rules.filter(function (r) { return r.hits + r.misses + r.stale_hits + r.stores > 0 || (r.rule !== 'hint' && r.rule !== 'all'); });
    fill('rules', rules.map(function (r) {
      var tr = el('tr', { 'data-testid': 'rule-row', 'data-rule': r.rule });
      tr.appendChild(el('td', null, r.rule));
      tr.appendChild(cell('hits', r.hits, fmtInt(r.hits)));
      tr.appendChild(cell('misses', r.misses, fmtInt(r.misses)));
      tr.appendChild(cell('stale-hits', r.stale_hits, fmtInt(r.stale_hits)));
      tr.appendChild(cell('hit-ratio', r.hit_ratio, fmtRatio(r.hit_ratio)));
      var b = el('td');
      b.appendChild(bar(r.hit_ratio));
      tr.appendChild(b);
      return tr;
    }), 'no rule has been used yet', 6);
  }

  function renderServers(servers) {
    var primary = $('primary');
    primary.textContent = servers.primary === null ? 'none' : servers.primary;
    if (servers.writable_conflict && servers.writable_conflict.length > 0) {
      primary.textContent = 'none: ' + servers.writable_conflict.join(' and ') + ' are all writable';
    }
    fill('servers', servers.servers.map(function (s) {
      var tr = el('tr', { 'data-testid': 'server-row', 'data-server': s.name });
      tr.appendChild(el('td', null, s.name));
      tr.appendChild(el('td', { 'data-testid': 'role', 'class': 'muted' }, s.configured_role));
      var st = el('td', { 'data-testid': 'state', 'data-value': s.state });
      st.appendChild(el('span', { 'class': 'badge s-' + s.state }, s.state));
      tr.appendChild(st);
      var rotation = s.in_rotation === undefined ? null : s.in_rotation;
      tr.appendChild(cell('in-rotation', rotation, rotation === null ? '\\u2014' : rotation ? 'yes' : 'no'));
      var lag = s.lag_seconds === undefined ? null : s.lag_seconds;
      tr.appendChild(cell('lag', lag, lag === null ? '\\u2014' : lag + ' s'));
      tr.appendChild(el('td', { 'class': 'muted' }, s.lag_source || ''));
      tr.appendChild(el('td', { 'class': 'muted sql' }, s.last_error || ''));
      return tr;
    }), 'no servers', 7);
  }

  function renderQueries(stats) {
    $('queries-off').hidden = stats !== null;
    $('queries-on').hidden = stats === null;
    if (stats === null) return;
    $('queries-tracked').textContent = '(' + stats.tracked + ' digests tracked, at most ' + stats.max_digests + ')';
    fill('queries', stats.digests.map(function (d) {
      var tr = el('tr', { 'data-testid': 'query-row', 'data-digest': d.digest });
      tr.appendChild(el('td', { 'class': 'sql', 'data-testid': 'digest' }, d.digest));
      tr.appendChild(cell('count', d.count, fmtInt(d.count)));
      tr.appendChild(cell('total-seconds', d.total_seconds, d.total_seconds.toFixed(3) + ' s'));
      tr.appendChild(cell('mean-seconds', d.mean_seconds, fmtMs(d.mean_seconds)));
      tr.appendChild(cell('p95-seconds', d.p95_seconds, fmtMs(d.p95_seconds)));
      tr.appendChild(cell('cache-hits', d.cache_hits, fmtInt(d.cache_hits)));
      tr.appendChild(cell('cache-misses', d.cache_misses, fmtInt(d.cache_misses)));
      var dest = d.destinations;
      tr.appendChild(el('td', { 'data-testid': 'destinations', 'class': 'muted' }, 'cache ' + dest.cache + ' / primary ' + dest.primary + ' / replica ' + dest.replica));
      return tr;
    }), 'no statements yet', 8);
  }

  function refresh() {
    Promise.all([get('/metrics', true), get('/cache'), get('/servers'), get('/stats/queries?limit=10&sort=total_time')])
      .then(function (all) {
        var at = Date.now();
        renderRoutes(statementsByRoute(all[0] || ''), at);
        renderCache(all[1]);
        renderServers(all[2]);
        renderQueries(all[3]);
        refreshes++;
        document.body.setAttribute('data-refreshes', String(refreshes));
        $('updated').textContent = 'updated ' + new Date(at).toLocaleTimeString() + ', every ' + every + ' s';
        $('error').textContent = '';
        setTimeout(refresh, every * 1000);
      })
      .catch(function (err) {
        if (err instanceof Unauthorized) {
          // The token was changed (a reload) or removed: ask again.
          sessionStorage.removeItem(TOKEN_KEY);
          location.reload();
          return;
        }
        $('error').textContent = 'refresh failed: ' + (err && err.message ? err.message : String(err)) + '; retrying';
        setTimeout(refresh, every * 1000);
      });
  }
  refresh();
})();
`;

/** The 401 page's script: ask for the token, then load the dashboard with it in place of this page. */
const TOKEN_SCRIPT = `
'use strict';
(function () {
  var TOKEN_KEY = ${JSON.stringify(DASHBOARD_TOKEN_KEY)};
  var form = document.getElementById('token-form');
  var input = document.getElementById('token');
  var message = document.getElementById('token-error');
  function load(token) {
    message.textContent = '';
    fetch(location.pathname + location.search, { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' })
      .then(function (r) {
        if (r.status === 401) {
          sessionStorage.removeItem(TOKEN_KEY);
          message.textContent = 'That is not the admin token.';
          form.hidden = false;
          return;
        }
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.text().then(function (html) {
          sessionStorage.setItem(TOKEN_KEY, token);
          document.open();
          document.write(html);
          document.close();
        });
      })
      .catch(function (err) {
        form.hidden = false;
        message.textContent = 'Could not load the dashboard: ' + (err && err.message ? err.message : String(err));
      });
  }
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var token = input.value.trim();
    if (token) load(token);
  });
  var saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    form.hidden = true;
    load(saved);
  } else {
    input.focus();
  }
})();
`;

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>wirecache dashboard</title>
<style>${STYLE}</style>
</head>
<body data-refreshes="0">
<header>
  <h1>wirecache</h1>
  <span class="meta" id="updated">loading…</span>
  <span class="err" id="error" data-testid="error"></span>
</header>
<main data-testid="dashboard">
  <section>
    <h2>Statements per second, by route</h2>
    <div class="row"><span><span class="big" id="qps-total" data-testid="qps-total" data-value="null">—</span><span class="unit">statements/s</span></span></div>
    <table>
      <thead><tr><th>route</th><th>per second</th><th>total</th></tr></thead>
      <tbody id="routes"></tbody>
    </table>
  </section>
  <section>
    <h2>Cache memory</h2>
    <p class="empty" id="cache-off" hidden>The query cache is off (no <code>cache</code> section).</p>
    <div id="cache-on">
      <div class="row">
        <span><span class="big" id="cache-bytes" data-testid="cache-bytes">—</span><span class="unit">of <span id="cache-max-bytes" data-testid="cache-max-bytes">—</span></span></span>
        <span><span class="big" id="cache-entries" data-testid="cache-entries">—</span><span class="unit">entries</span></span>
      </div>
      <div id="cache-bar"></div>
      <p class="muted" id="cache-storage" data-testid="cache-storage"></p>
      <table>
        <thead><tr><th>tier</th><th>state</th></tr></thead>
        <tbody id="tiers"></tbody>
      </table>
    </div>
  </section>
  <section>
    <h2>Hit ratio by rule</h2>
    <p class="empty" id="rules-off" hidden>The query cache is off.</p>
    <table id="rules-on">
      <thead><tr><th>rule</th><th>hits</th><th>misses</th><th>stale hits</th><th>hit ratio</th><th></th></tr></thead>
      <tbody id="rules"></tbody>
    </table>
  </section>
  <section>
    <h2>Servers</h2>
    <p class="muted">primary: <span id="primary" data-testid="primary">—</span></p>
    <table>
      <thead><tr><th>server</th><th>role</th><th>state</th><th>in rotation</th><th>lag</th><th>lag from</th><th>last error</th></tr></thead>
      <tbody id="servers"></tbody>
    </table>
  </section>
  <section class="wide">
    <h2>Top queries, by total time <span class="muted" id="queries-tracked"></span></h2>
    <p class="empty" id="queries-off" hidden>Statement statistics are off (<code>query_stats.max_digests: 0</code>).</p>
    <table id="queries-on">
      <thead><tr><th>digest</th><th>count</th><th>total</th><th>mean</th><th>p95</th><th>cache hits</th><th>cache misses</th><th>answered by</th></tr></thead>
      <tbody id="queries"></tbody>
    </table>
  </section>
</main>
<script>${DASHBOARD_SCRIPT}</script>
</body>
</html>
`;

export const TOKEN_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>wirecache dashboard: admin token</title>
<style>${STYLE}</style>
</head>
<body>
<form id="token-form" data-testid="token-form">
  <h2>wirecache dashboard</h2>
  <label for="token">The admin API needs its token (<code>admin.token</code>).
  It is kept in this tab only (sessionStorage) and sent as <code>Authorization: Bearer</code>.</label>
  <input id="token" data-testid="token" type="password" autocomplete="off" spellcheck="false">
  <button type="submit" data-testid="token-submit">Open the dashboard</button>
  <p class="err" id="token-error" data-testid="token-error"></p>
</form>
<script>${TOKEN_SCRIPT}</script>
</body>
</html>
`;

const hash = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/**
 * For both pages: the token page turns into the dashboard with
 * document.write, and keeps its policy, so one policy covers both.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src ${hash(DASHBOARD_SCRIPT)} ${hash(TOKEN_SCRIPT)}`,
  `style-src ${hash(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
