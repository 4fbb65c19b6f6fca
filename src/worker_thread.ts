/**
 * A worker thread: client sessions on an event loop of their own. It
 * listens on its own descriptor of the shared listening socket and runs a
 * ProxyServer whose once-per-process parts (monitor, binlog reader, view
 * reader, accounts from the database, login throttles, connection limits)
 * are the main thread's, reached through messages (src/worker_pool.ts
 * starts it) and, for the cache's generation counters, the binlog reader's
 * health and the session counts, through shared memory.
 */
import { closeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from './logger.js';
import { Metrics } from './metrics/metrics.js';
import { ruleCounts } from './admin/cache_routes.js';
import { ProxyServer } from './proxy_server.js';
import type { WorkerParts } from './worker_parts.js';
import { MirroredMonitor } from './routing/mirrored_monitor.js';
import type { UserConfig } from './config/types.js';
import { reviveBuffers, Rpc, type FromWorker, type QueryStatsPart, type SessionInfo, type ToWorker, type WorkerQuestion, type WorkerStart } from './workers/messages.js';

const port = parentPort!;
const start = reviveBuffers(workerData as WorkerStart);
const config = start.config;
const post = (message: FromWorker) => port.postMessage(message);
const rpc = new Rpc(port);
const logger = createLogger(config.log.level, { pretty: start.prettyLogs }).child({ worker: start.index });
// Process-wide figures (CPU, memory) are the main thread's to report: summed over threads they would count N times.
const metrics = new Metrics({ backendNames: config.backends.map((b) => b.name), defaultMetrics: false });

let databaseUsers = new Map<string, UserConfig>(start.databaseUsers.map((u) => [u.name, u]));
const binlogFlags = start.binlogFlags ? new Int32Array(start.binlogFlags) : null;
let proxy: ProxyServer | null = null;
/** The main thread asked this thread to stop (possibly while it was starting), with this grace period. */
let stopping: number | null = null;
const monitor = start.monitor
  ? new MirroredMonitor(
      start.monitor,
      (server) => post({ type: 'suspect', server }),
      (server, state) => {
        // As the main thread's monitor does for its pool: connections kept to a server found down would fail their next client.
        if (state === 'down') proxy?.loginPool.dropServer(server);
      },
    )
  : null;

const parts: WorkerParts = {
  index: start.index,
  count: start.count,
  listenFd: start.listenFd,
  cacheSharing: start.cacheSharing,
  monitor,
  binlog: binlogFlags
    ? {
        get current() {
          return Atomics.load(binlogFlags, 0) === 1;
        },
        waitFor: (gtid, timeoutMs) => rpc.ask<boolean>({ kind: 'binlog_wait', gtid, timeoutMs }).catch(() => false),
      }
    : null,
  binlogUnhealthy: binlogFlags && config.binlog.onUnavailable === 'fail_closed' ? () => Atomics.load(binlogFlags, 1) === 1 : null,
  schemaChanged: () => rpc.ask<void>({ kind: 'schema_changed' }).catch(() => undefined),
  databaseUser: (name) => databaseUsers.get(name),
  rsaKeys: start.rsaKeys,
  loginFailed: (address, user) => post({ type: 'login_failed', address, user }),
  sessionCounts: new Int32Array(start.sessionCounts),
  nextIds: new Uint32Array(start.nextIds),
  reserveUserSession: (user, limit) => rpc.ask<boolean>({ kind: 'reserve_user', user, limit }),
  countUserSession: (user) => post({ type: 'count_user', user }),
  releaseUserSession: (user) => post({ type: 'release_user', user }),
  remoteKillThread: (targetId, scope, user) => rpc.ask<number | null>({ kind: 'kill_thread', targetId, scope, user }),
  remoteSession: async (targetId) => {
    const info = await rpc.ask<SessionInfo | null>({ kind: 'find_session', targetId });
    if (!info) return null;
    return {
      user: info.user,
      backendThreads: info.backendThreads,
      killPending: (on) => rpc.ask<void>({ kind: 'session_action', worker: info.worker, id: info.id, action: { kind: 'kill_pending', on } }).catch(() => undefined),
      killed: (idle, reason) => void rpc.ask<void>({ kind: 'session_action', worker: info.worker, id: info.id, action: { kind: 'killed', idle, reason } }).catch(() => undefined),
    };
  },
};

// As in the main thread (cli.ts): a bug in one session must not end this thread's other sessions.
process.on('uncaughtException', (err) => logger.fatal({ err }, 'uncaught exception'));

/**
 * Startup failed. Before the server took the listening descriptor over
 * (`ownsFd`), it is closed here, or every failed start would leak one; after,
 * the server closed it, and its number may already be another thread's.
 */
function failStart(err: unknown, ownsFd: boolean): never {
  logger.error({ err }, 'worker thread could not start');
  if (ownsFd) closeSync(start.listenFd);
  process.exit(1);
}

let made: ProxyServer;
try {
  made = new ProxyServer(config, logger, metrics, metrics.cache, metrics.routing, metrics.binlog, metrics.pool, parts);
} catch (err) {
  failStart(err, true);
}
const server = made;
proxy = server;
for (const block of start.blocks) server.logins.block(block);
metrics.pool.watch((name) => server.loginPool.usage(name));
metrics.watchProxy(server);
// The memory tier's entries and bytes are the main thread's to report: the tier is shared.
if (server.cache) metrics.cache.knownRules(server.cache.config.rules.map((r) => r.name));
// The main thread's memcached API tier follows SQL writes at once (when there is one).
if (server.cache && config.memcachedApi) server.cache.onProxyWrite((tables) => post({ type: 'proxy_write', tables: tables === null ? null : [...tables] }));
if (start.schema) server.applySchema(start.schema);

/** The main thread's questions. */
function answer(question: WorkerQuestion): unknown {
  switch (question.kind) {
    case 'metrics':
      return metrics.registry.getMetricsAsJSON();
    case 'query_stats':
      return server.queryStats ? ({ records: server.queryStats.records(), evicted: server.queryStats.evicted } satisfies QueryStatsPart) : null;
    case 'query_stats_reset': {
      const dropped = server.queryStats?.size ?? 0;
      server.queryStats?.reset();
      return dropped;
    }
    case 'cache_counts':
      return server.cache ? ruleCounts(server.cache, metrics.cache) : null;
    case 'pool_usage':
      return Object.fromEntries(config.backends.map((b) => [b.name, server.loginPool.usage(b.name)]));
    case 'find_session': {
      const found = server.sessionFor(question.targetId);
      return found ? ({ worker: start.index, ...found } satisfies SessionInfo) : null;
    }
    case 'kill_thread':
      return server.killThreadFor(question.targetId, question.scope, question.user);
    case 'session_action':
      return server.killedElsewhere(question.id, question.action);
  }
}

port.on('message', (raw: ToWorker) => {
  const message = reviveBuffers(raw);
  switch (message.type) {
    case 'monitor':
      monitor?.update(message.snapshot);
      break;
    case 'schema':
      server.applySchema(message.schema);
      break;
    case 'users':
      databaseUsers = new Map(message.users.map((u) => [u.name, u]));
      break;
    case 'blocked':
      server.logins.block(message);
      break;
    case 'reload':
      server.reload(message.config);
      if (server.cache) metrics.cache.knownRules(server.cache.config.rules.map((r) => r.name));
      break;
    case 'shutdown':
      // Still starting: it stops as soon as it listens (a shutdown before the listen would leave it listening).
      stopping = message.graceMs;
      if (listening) stop(message.graceMs);
      break;
    case 'request':
      rpc.answer(message.id, () => answer(message.question));
      break;
    case 'reply':
      rpc.answered(message);
      break;
  }
});

function stop(graceMs: number): void {
  void server.shutdown(graceMs).then(() => {
    rpc.fail('worker stopped');
    port.close();
  });
}

let listening = false;
server.start().then(
  () => {
    listening = true;
    if (stopping !== null) stop(stopping);
    else post({ type: 'ready' });
  },
  (err: Error) => failStart(err, false),
);
