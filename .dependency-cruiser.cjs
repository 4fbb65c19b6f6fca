/**
 * Layer rules for src/, checked by dependency-cruiser (`npm run check:layers`,
 * run by scripts/test.sh right after the type check; test/layers.test.ts runs
 * the same rules over src/ and over a deliberately bad fixture tree).
 *
 * Layers (one folder each under src/):
 *   protocol/  bytes only: imports nothing outside itself (node built-ins other
 *              than net/tls are fine)
 *   sql/       pure text analysis: imports nothing in src/ outside itself
 *   cache/, routing/, sql/   no sessions, admin, metrics, nor sockets (node:net, node:tls)
 *   replication/  the binlog reader: no sessions, admin, metrics, plan, nor prom-client
 *              (sockets only through backend/)
 *   session/   no Prometheus (prom-client), no metrics/, no admin/: it reports
 *              through observer interfaces
 *   workers/   the worker threads' shared listener and messages: may use the layers
 *              below; nothing below imports it
 *   top        app.ts, cli.ts, proxy_server.ts, worker_pool.ts, worker_thread.ts, worker_parts.ts:
 *              nothing below imports them
 *
 * Type-only imports count (tsPreCompilationDeps: true): a type that lives in the
 * wrong layer ties the layers together as much as a value does.
 *
 * Folders never import each other in a circle (no-folder-cycles): the order
 * above is a real order, not a hope.
 *
 * One file is let through the socket rule by name: src/cache/memcached_store.ts
 * is the cache's storage driver (memcached over TCP, through memjs). The
 * cache's decisions (cache_policy.ts, cache_rules.ts, query_cache.ts) still
 * may not import node:net or node:tls.
 */

/** Node built-ins that open sockets: kept out of the layers that must not do I/O of their own. */
const SOCKET_MODULES = '^(node:)?(net|tls)$';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'protocol-imports-only-protocol',
      comment: 'src/protocol/ is the bytes layer: it imports nothing outside src/protocol/ except node built-ins.',
      severity: 'error',
      from: { path: '^src/protocol/' },
      to: { pathNot: '^src/protocol/', dependencyTypesNot: ['core'] },
    },
    {
      name: 'protocol-no-sockets',
      comment: 'src/protocol/ parses and builds bytes; it does not open sockets (node:net, node:tls).',
      severity: 'error',
      from: { path: '^src/protocol/' },
      to: { dependencyTypes: ['core'], path: SOCKET_MODULES },
    },
    {
      name: 'sql-imports-only-sql',
      comment: 'src/sql/ is pure text analysis: it imports nothing in src/ outside src/sql/.',
      severity: 'error',
      from: { path: '^src/sql/' },
      to: { path: '^src/', pathNot: '^src/sql/' },
    },
    {
      name: 'cache-routing-sql-not-to-session-admin-metrics',
      comment: 'src/cache/, src/routing/ and src/sql/ sit below the session: they never import src/session/, src/admin/ or src/metrics/.',
      severity: 'error',
      from: { path: '^src/(cache|routing|sql)/' },
      to: { path: '^src/(session|admin|metrics)/' },
    },
    {
      name: 'cache-routing-sql-no-sockets',
      comment: 'src/cache/, src/routing/ and src/sql/ do not import node:net or node:tls (the memcached storage driver excepted).',
      severity: 'error',
      from: { path: '^src/(cache|routing|sql)/', pathNot: '^src/cache/memcached_store\\.ts$' },
      to: { dependencyTypes: ['core'], path: SOCKET_MODULES },
    },
    {
      name: 'replication-not-to-session-admin-metrics',
      comment: 'src/replication/ (the binlog reader) sits beside routing/: it may use protocol/, backend/, sql/, config/, cache/ and routing/, but never src/session/, src/admin/, src/metrics/ or src/plan/, nor prom-client: it reports through BinlogObserver.',
      severity: 'error',
      from: { path: '^src/replication/' },
      to: { path: ['^src/(session|admin|metrics|plan)/', '(^|/)node_modules/prom-client/'] },
    },
    {
      name: 'session-not-to-metrics-admin',
      comment: 'src/session/ reports through observer interfaces: it never imports prom-client, src/metrics/ or src/admin/.',
      severity: 'error',
      from: { path: '^src/session/' },
      to: { path: ['^src/(metrics|admin)/', '(^|/)node_modules/prom-client/'] },
    },
    {
      name: 'memcached-api-beside-sessions',
      comment: 'src/memcached_api/ (the memcached front end) is a layer beside src/session/: it may use backend/, replication/ (row images), config/ and its own files, but never the SQL sessions, the query cache, routing, src/admin/, src/metrics/ or prom-client: the top (app.ts) wires it to them through plain functions and it reports through MemcachedObserver.',
      severity: 'error',
      from: { path: '^src/memcached_api/' },
      to: { path: ['^src/(session|cache|routing|sql|plan|admin|metrics)/', '(^|/)node_modules/prom-client/'] },
    },
    {
      name: 'not-to-top',
      comment: 'Nothing below the top (any folder under src/) imports src/app.ts, src/cli.ts, src/proxy_server.ts, src/worker_pool.ts, src/worker_thread.ts or src/worker_parts.ts.',
      severity: 'error',
      from: { path: '^src/[^/]+/' },
      to: { path: '^src/(app|cli|proxy_server|worker_pool|worker_thread|worker_parts)\\.ts$' },
    },
    {
      name: 'no-folder-cycles',
      comment: 'Folders under src/ import each other in one direction only: no circle of folders.',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import the cruiser cannot resolve would slip past every rule above.',
      severity: 'error',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
