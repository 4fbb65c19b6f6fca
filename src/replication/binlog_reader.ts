/**
 * The binlog reader: connects to the primary as a replica (MariaDB GTID
 * mode), reads the event stream and bumps the cache generation of every
 * table a committed transaction wrote, whoever wrote it: other applications
 * writing directly, triggers, FK cascades, stored functions, writes through
 * views, DDL.
 *
 * The protocol (MariaDB): log in (BackendConnection), set
 * `@mariadb_slave_capability=4` (GTID-aware), `@master_binlog_checksum`
 * (events then carry the server's checksum, described by
 * FORMAT_DESCRIPTION), `@slave_connect_state` (the GTID position to start
 * after), `@master_heartbeat_period` (a HEARTBEAT when nothing happened for
 * a second), then COM_REGISTER_SLAVE with our own server_id and
 * COM_BINLOG_DUMP with an empty file name (the server then starts from
 * slave_connect_state). Each packet that follows is 0x00 + one event, 0xFE
 * (end of stream) or 0xFF (error).
 *
 * Invalidation is batched per transaction: the tables of its TABLE_MAP/rows
 * events and statements are collected and bumped when the transaction ends
 * (XID, a COMMIT query, or a standalone statement such as DDL). Nothing a
 * transaction wrote is visible to readers before its commit, so bumping at
 * the commit event misses nothing and costs one bump per table per
 * transaction.
 *
 * Position: the GTID of the last transaction applied. After a disconnect
 * the reader reconnects with backoff from that position, to the primary the
 * `primary()` callback names at that moment (it also checks every second
 * that the primary has not moved). When the server no longer has that
 * position (ERR 1236, binlogs purged or a primary without them), it starts
 * again from the current position and invalidates everything, as it does on
 * its first start: it cannot know what was written while it was not reading.
 */
import { createHash } from 'node:crypto';
import { BackendConnection, BackendError, type BackendLogin } from '../backend/backend_connection.js';
import type { BackendEndpoint } from '../config/types.js';
import { Capability, PacketHeader } from '../protocol/constants.js';
import { encodePacket, PacketFramer } from '../protocol/framing.js';
import { binlogDumpPayload, registerSlavePayload } from '../protocol/replication_commands.js';
import { parseErr } from '../protocol/generic_packets.js';
import { gtidCovers } from '../routing/gtid.js';
import { changesSchema, classify, qualifiedTableName, writesData } from '../sql/classifier.js';
import { initialFormat, parseEvent, type BinlogEvent, type BinlogFormat } from './binlog_events.js';
import { nullBinlogObserver, type BinlogObserver, type BinlogReaderState, type RowWatcher } from './observer.js';

/** What the reader bumps: QueryCache.invalidate (null: everything). */
export type Invalidate = (tables: readonly string[] | null) => void | Promise<void>;

export interface BinlogReaderOptions {
  user: string;
  password: string;
  /** server_id the reader registers with; must differ from every server's in the topology. */
  serverId: number;
  /** A transaction applied later than this after its commit marks the reader behind. */
  maxDelayMs: number;
  connectTimeoutMs: number;
  /** The server to read from now (the primary); null while there is none (writable conflict). */
  primary: () => BackendEndpoint | null;
  invalidate: Invalidate;
  observer?: BinlogObserver;
  /** Called for each DDL statement read (CREATE, ALTER, DROP, RENAME): the view list may have changed. */
  onDdl?: () => void;
  /** Called with each raw event (the bytes after the OK byte): fixture capture. */
  onRawEvent?: (event: Buffer) => void;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /**
   * `auto`: give up for good (state `off`) when the server has no binary
   * log or the account may not replicate; otherwise keep retrying.
   */
  auto: boolean;
}

/** Why the reader cannot run at all on this server/account (as opposed to a transient failure). */
export class BinlogUnavailableError extends Error {
  override name = 'BinlogUnavailableError';
}

/** MariaDB errors that mean the account may not replicate or log in. */
const ACCESS_ERRORS = new Set([1045, 1044, 1227, 1142]);
/** ER_MASTER_FATAL_ERROR_READING_BINLOG: the position is not in the server's binlogs. */
const ER_MASTER_FATAL_ERROR_READING_BINLOG = 1236;
/** Tables collected for one transaction before it just invalidates everything. */
const MAX_TABLES_PER_TRANSACTION = 1000;
/** Table ids kept from TABLE_MAP events (they are re-sent before each statement's rows). */
const MAX_TABLE_IDS = 10_000;
const BACKOFF_MIN_MS = 100;
/** A stream silent this long (no event, no heartbeat) is treated as lost and opened again. */
const SILENCE_LOST_MS = 10_000;
/** Errors that mean the server is not one the reader can follow (MySQL: no gtid_binlog_pos, ERR 1193). */
const UNSUPPORTED_ERRORS = new Set([1193]);
const BACKOFF_MAX_MS = 5000;
const LOGIN_CAPABILITIES =
  Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.TRANSACTIONS | Capability.LONG_FLAG;

export class BinlogReader {
  private rowWatcher: RowWatcher | null = null;
  /** TABLE_MAP events of watched tables, by table id. */
  private readonly watchedMaps = new Map<number, Buffer>();

  /** Sets who follows rows (one watcher). */
  watchRows(watcher: RowWatcher | null): void {
    this.rowWatcher = watcher;
    this.watchedMaps.clear();
  }
  private stateValue: BinlogReaderState = 'stopped';
  private conn: BackendConnection | null = null;
  private endpointValue: BackendEndpoint | null = null;
  private format: BinlogFormat = initialFormat();
  /** Applied position, by domain: "domain-server-seq". Null before the first start. */
  private applied: Map<number, string> | null = null;
  /** The primary's gtid_binlog_pos when this connection started: caught up once applied covers it. */
  private target = '';
  private readonly tableIds = new Map<number, string>();
  /** The transaction being read: its GTID and the tables it wrote (null: everything). */
  private pending: { domain: number; gtid: string; standalone: boolean } | null = null;
  private written: Set<string> | null = new Set();
  private behindValue = false;
  private running = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private followTimer: NodeJS.Timeout | null = null;
  private backoffMs = BACKOFF_MIN_MS;
  /** True once a stream has started; before that, `auto` has not yet decided. */
  private everStarted = false;
  private lastError: string | null = null;
  private lastWarned: string | null = null;
  /** Numbers connection attempts: an attempt that is no longer the latest (stop(), timeout) gives up quietly. */
  private attemptSeq = 0;
  private readonly observer: BinlogObserver;
  /** Epoch ms of the last event or heartbeat (or the connection). */
  private lastActivityMs = 0;
  /** Delay (ms) of the last transaction applied; 0 after a heartbeat. */
  private lastDelayMs = 0;
  private readonly waiters: { covers: string; resolve: (ok: boolean) => void }[] = [];

  constructor(private readonly options: BinlogReaderOptions) {
    this.observer = options.observer ?? nullBinlogObserver;
  }

  get state(): BinlogReaderState {
    return this.stateValue;
  }

  /** True while the reader is not a trustworthy source of invalidations (disconnected, catching up, behind, stopped). */
  get unhealthy(): boolean {
    if (this.stateValue === 'off') return false;
    if (this.stateValue === 'connecting' || this.stateValue === 'disconnected') {
      // Before the first start, `auto` has not decided: the cache behaves as without a reader.
      return this.everStarted || !this.options.auto;
    }
    return this.stateValue !== 'streaming' || this.behindValue;
  }

  /** Streaming and within max_delay_ms: a write's GTID will be passed soon, and its tables bumped then. */
  get current(): boolean {
    return this.stateValue === 'streaming' && !this.behindValue;
  }

  /** For /cache and /readyz. */
  status(): {
    state: BinlogReaderState;
    server: string | null;
    position: string | null;
    behind: boolean;
    delay_ms: number;
    last_error: string | null;
    thread_id: number | null;
  } {
    return {
      state: this.stateValue,
      server: this.endpointValue?.name ?? null,
      position: this.applied ? this.position() : null,
      behind: this.behindValue,
      delay_ms: this.lastDelayMs,
      last_error: this.lastError,
      thread_id: this.conn && !this.conn.closed ? this.conn.threadId : null,
    };
  }

  /** The GTID position of the last transaction applied ("" when none yet). */
  position(): string {
    return this.applied ? [...this.applied.values()].join(',') : '';
  }

  /** Resolves true once the reader has applied `gtid` (a GTID or a position), false after `timeoutMs`. */
  waitFor(gtid: string, timeoutMs: number): Promise<boolean> {
    if (gtidCovers(this.position(), gtid)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = {
        covers: gtid,
        resolve: (ok: boolean) => {
          clearTimeout(timer);
          resolve(ok);
        },
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(false);
      }, timeoutMs);
      timer.unref();
      this.waiters.push(waiter);
    });
  }

  /**
   * Starts reading. Resolves after the first attempt: with `auto`, an
   * account or server that cannot replicate leaves the reader `off` (and
   * rejects with BinlogUnavailableError); a transient failure retries in the background.
   */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.followTimer = setInterval(() => this.tick(), 1000);
    this.followTimer.unref();
    await this.attempt();
    if (this.stateValue === 'off') throw new BinlogUnavailableError(this.lastError ?? 'binlog unavailable');
  }

  /** Stops reading (shutdown); the cache then counts the reader as unavailable. */
  stop(): void {
    this.running = false;
    this.attemptSeq++;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.followTimer) clearInterval(this.followTimer);
    this.retryTimer = null;
    this.followTimer = null;
    this.closeConnection();
    if (this.stateValue !== 'off') this.setState('stopped');
  }

  private setState(state: BinlogReaderState): void {
    if (state === this.stateValue) return;
    this.stateValue = state;
    this.observer.stateChanged(state);
    this.publishHealth();
  }

  private setBehind(behind: boolean): void {
    if (behind === this.behindValue) return;
    this.behindValue = behind;
    this.publishHealth();
  }

  private readonly healthListeners: ((current: boolean, unhealthy: boolean) => void)[] = [];

  /** Hears every change of `current` and `unhealthy` (worker threads mirror them), and the values now. */
  onHealthChange(listener: (current: boolean, unhealthy: boolean) => void): void {
    this.healthListeners.push(listener);
    listener(this.current, this.unhealthy);
  }

  private publishHealth(): void {
    for (const listener of this.healthListeners) listener(this.current, this.unhealthy);
  }

  private closeConnection(): void {
    const conn = this.conn;
    this.conn = null;
    conn?.destroy();
  }

  /** Once a second: a silent stream, and a primary that moved. */
  private tick(): void {
    if (!this.running || !this.conn || (this.stateValue !== 'streaming' && this.stateValue !== 'catching_up')) return;
    // The server sends a heartbeat after 1 s without events: a longer silence means the reader may be behind.
    const silentMs = Date.now() - this.lastActivityMs;
    if (silentMs > SILENCE_LOST_MS) {
      this.lost(new Error(`no event or heartbeat for ${Math.round(silentMs / 1000)} s`));
      return;
    }
    if (silentMs > this.options.maxDelayMs + 2000) this.setBehind(true);
    this.followPrimary();
  }

  private followPrimary(): void {
    if (!this.running || !this.conn || !this.endpointValue) return;
    const now = this.options.primary();
    if (now && (now.host !== this.endpointValue.host || now.port !== this.endpointValue.port)) {
      this.options.log?.info({ from: this.endpointValue.name, to: now.name }, 'binlog reader follows the new primary');
      this.lost(null);
    }
  }

  private async attempt(): Promise<void> {
    if (!this.running) return;
    const endpoint = this.options.primary();
    if (!endpoint) {
      this.lastError = 'no primary (writable conflict)';
      this.scheduleRetry();
      return;
    }
    this.setState('connecting');
    const seq = ++this.attemptSeq;
    let timer: NodeJS.Timeout | undefined;
    try {
      // Login, setup queries and the dump request, bounded as a whole: a server that stops answering cannot hold the reader.
      const limitMs = this.options.connectTimeoutMs * 2;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`binlog connection setup timed out after ${limitMs} ms`)), limitMs);
      });
      await Promise.race([this.connect(endpoint, seq), timeout]);
      this.lastError = null;
      this.lastWarned = null;
    } catch (err) {
      // Cancelled by stop() or superseded: a newer attempt owns the state.
      if (seq !== this.attemptSeq || !this.running) return;
      // Whatever of this attempt is still pending (a login that outlived the timeout) must not go on.
      this.attemptSeq++;
      this.closeConnection();
      const message = (err as Error).message;
      this.lastError = message;
      if (err instanceof BinlogUnavailableError && this.options.auto && !this.everStarted) {
        this.running = false;
        if (this.followTimer) clearInterval(this.followTimer);
        this.setState('off');
        return;
      }
      // One warning per distinct failure, not one per retry.
      if (message !== this.lastWarned) this.options.log?.warn({ backend: endpoint.name, err: message }, 'binlog reader could not connect; retrying');
      this.lastWarned = message;
      this.setState('disconnected');
      this.scheduleRetry();
    } finally {
      clearTimeout(timer);
    }
  }

  private scheduleRetry(): void {
    if (!this.running || this.retryTimer) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.attempt();
    }, delay);
    this.retryTimer.unref();
  }

  private async connect(endpoint: BackendEndpoint, seq: number): Promise<void> {
    const cancelled = () => seq !== this.attemptSeq || !this.running;
    const login: BackendLogin = {
      user: this.options.user,
      passwordSha1: this.options.password === '' ? null : createHash('sha1').update(this.options.password).digest(),
      database: null,
      characterSet: 45,
      capabilities: LOGIN_CAPABILITIES,
      mariaDbCapabilities: 0,
      trackSession: false,
      connectAttributes: [['program_name', 'wirecache-binlog']],
      tls: null,
    };
    let conn: BackendConnection;
    try {
      conn = await BackendConnection.connect(endpoint, login, this.options.connectTimeoutMs);
    } catch (err) {
      const code = err instanceof BackendError ? err.serverError?.code : undefined;
      if (code !== undefined && ACCESS_ERRORS.has(code)) throw new BinlogUnavailableError(`login refused: ${(err as Error).message}`);
      throw err;
    }
    if (cancelled()) {
      conn.destroy();
      throw new Error('cancelled');
    }
    this.conn = conn;
    this.endpointValue = endpoint;
    this.lastActivityMs = Date.now();
    const query = async (sql: string) => {
      const r = await conn.query(sql);
      if (cancelled()) throw new Error('cancelled');
      if (r.error) {
        const e = new Error(`${sql}: ERR ${r.error.code} ${r.error.message}`);
        if (UNSUPPORTED_ERRORS.has(r.error.code)) throw new BinlogUnavailableError(`${e.message} (the binlog reader follows MariaDB GTIDs only)`);
        throw ACCESS_ERRORS.has(r.error.code) ? new BinlogUnavailableError(e.message) : e;
      }
      return r.rows;
    };
    const [row] = await query('SELECT @@global.log_bin, @@global.gtid_binlog_pos, @@global.binlog_checksum');
    if (!row || row[0] !== '1') throw new BinlogUnavailableError(`server '${endpoint.name}' has no binary log (log_bin is OFF)`);
    const current = row[1] ?? '';
    const fresh = this.applied === null;
    const start = fresh ? current : this.position();
    this.target = current;
    this.format = initialFormat(row[2] === 'CRC32');
    this.pending = null;
    this.written = new Set();
    // Table ids are per server and per TABLE_MAP; a flag from the last connection says nothing about this one.
    this.tableIds.clear();
    this.setBehind(false);
    await query('SET @mariadb_slave_capability=4');
    await query('SET @master_binlog_checksum=@@global.binlog_checksum');
    await query(`SET @slave_connect_state='${start.replace(/[^0-9,-]/g, '')}'`);
    await query('SET @slave_gtid_strict_mode=0');
    await query('SET @slave_gtid_ignore_duplicates=0');
    await query('SET @master_heartbeat_period=1000000000');

    // From here the stream is ours: COM_REGISTER_SLAVE's reply, then the dump.
    const framer = new PacketFramer();
    let phase: 'register' | 'dump' = 'register';
    const ready = new Promise<void>((resolve, reject) => {
      conn.attach(
        (chunk) => {
          framer.push(chunk);
          try {
            for (let p = framer.next(); p; p = framer.next()) {
              const payload = p.payload;
              if (phase === 'register') {
                if (payload[0] === PacketHeader.ERR) {
                  const e = parseErr(payload);
                  const message = `COM_REGISTER_SLAVE refused: ERR ${e.code} ${e.message}`;
                  reject(ACCESS_ERRORS.has(e.code) ? new BinlogUnavailableError(message) : new Error(message));
                  return;
                }
                phase = 'dump';
                conn.write(encodePacket(binlogDumpPayload(this.options.serverId), 0));
                resolve();
                continue;
              }
              this.onPacket(payload);
              if (this.conn !== conn) return;
            }
          } catch (err) {
            reject(err as Error);
            // Before the dump started, the failure is the attempt's (which retries); after, the stream's.
            if (phase === 'dump' && this.conn === conn) this.lost(err as Error);
          }
        },
        (err) => {
          reject(err ?? new Error('connection closed by the server'));
          if (phase === 'dump' && this.conn === conn) this.lost(err);
        },
      );
    });
    conn.write(encodePacket(registerSlavePayload(this.options.serverId, this.options.user), 0));
    await ready;
    if (cancelled()) throw new Error('cancelled');
    this.lastActivityMs = Date.now();
    if (fresh) this.applied = positionMap(current);
    if (this.everStarted) this.observer.reconnected();
    this.everStarted = true;
    this.backoffMs = BACKOFF_MIN_MS;
    this.setState(gtidCovers(this.position(), this.target) ? 'streaming' : 'catching_up');
    this.options.log?.info({ backend: endpoint.name, position: start, serverId: this.options.serverId }, 'binlog reader streaming');
    // Writes made before this reader started (or while the position was lost) were never seen: start clean.
    if (fresh) {
      this.rowWatcher?.changed(null);
      await this.options.invalidate(null);
    }
  }

  /** One packet of the dump stream. */
  private onPacket(payload: Buffer): void {
    if (payload.length === 0) throw new Error('empty packet in the binlog stream');
    if (payload[0] === PacketHeader.ERR) {
      const e = parseErr(payload);
      if (e.code === ER_MASTER_FATAL_ERROR_READING_BINLOG) {
        // The position is gone on this server: start over from its current position, invalidating everything.
        this.options.log?.warn({ err: e.message, position: this.position() }, 'binlog position not found on the primary; restarting from its current position');
        this.applied = null;
      }
      throw new Error(`binlog stream error: ERR ${e.code} ${e.message}`);
    }
    if (payload[0] === PacketHeader.EOF && payload.length < 9) throw new Error('binlog stream ended by the server');
    if (payload[0] !== PacketHeader.OK) throw new Error(`unexpected packet 0x${payload[0].toString(16)} in the binlog stream`);
    const bytes = payload.subarray(1);
    this.options.onRawEvent?.(bytes);
    this.apply(parseEvent(bytes, this.format), bytes);
  }

  /** Applies one parsed event (exposed for tests). */
  apply(event: BinlogEvent, bytes?: Buffer): void {
    this.observer.eventRead(event.kind);
    this.lastActivityMs = Date.now();
    switch (event.kind) {
      case 'gtid':
        this.flush(event.header.timestamp);
        this.pending = { domain: event.domain, gtid: `${event.domain}-${event.serverId}-${event.seq}`, standalone: event.standalone };
        this.written = new Set();
        return;
      case 'table_map': {
        if (this.tableIds.size >= MAX_TABLE_IDS && !this.tableIds.has(event.tableId)) (this.tableIds.clear(), this.watchedMaps.clear());
        const name = `${event.schema}.${event.table}`.toLowerCase();
        this.tableIds.set(event.tableId, name);
        if (this.rowWatcher?.watches(name) && bytes) this.watchedMaps.set(event.tableId, Buffer.from(bytes));
        else this.watchedMaps.delete(event.tableId);
        // Every table the statement mapped counts as written: an FK cascade's child rows are not logged,
        // only the child's TABLE_MAP is.
        this.note([name]);
        return;
      }
      case 'rows': {
        const name = this.tableIds.get(event.tableId);
        this.note(name === undefined ? null : [name]);
        const map = this.watchedMaps.get(event.tableId);
        if (map && bytes && name !== undefined) this.rowWatcher?.rows(name, map, bytes, this.format);
        return;
      }
      case 'query': {
        const text = event.sql.trim();
        const head = text.slice(0, 9).toUpperCase();
        if (head === 'COMMIT' || head.startsWith('COMMIT ') || head === 'ROLLBACK' || head.startsWith('ROLLBACK ')) {
          this.flush(event.header.timestamp);
          return;
        }
        const c = classify(event.sql);
        if (writesData(c)) {
          const tables = c.tablesWritten === null ? null : c.tablesWritten.map((t) => qualifiedTableName(t, event.schema));
          this.note(tables);
          this.rowWatcher?.changed(tables);
        }
        if (changesSchema(c)) this.options.onDdl?.();
        if (!this.pending || this.pending.standalone) this.flush(event.header.timestamp);
        return;
      }
      case 'query_compressed':
      case 'incident':
        this.rowWatcher?.changed(null);
        this.note(null);
        if (!this.pending || this.pending.standalone) this.flush(event.header.timestamp);
        return;
      case 'xid':
        this.flush(event.header.timestamp);
        return;
      case 'heartbeat':
        this.lastDelayMs = 0;
        this.observer.delay(0);
        this.setBehind(false);
        // A heartbeat comes when the server has nothing more to send: the reader is at the end.
        if (this.stateValue === 'catching_up') this.setState('streaming');
        return;
      default:
        return;
    }
  }

  private note(tables: readonly string[] | null): void {
    if (this.written === null) return;
    if (tables === null) {
      this.written = null;
      return;
    }
    for (const t of tables) this.written.add(t);
    if (this.written.size > MAX_TABLES_PER_TRANSACTION) this.written = null;
  }

  /** The transaction ended: bump what it wrote, record its GTID as applied, and measure the delay. */
  private flush(timestamp: number): void {
    const written = this.written;
    this.written = new Set();
    let bumped: void | Promise<void> = undefined;
    if (written === null || written.size > 0) {
      const tables = written === null ? null : [...written];
      this.observer.invalidated(tables === null ? 1 : tables.length);
      bumped = this.options.invalidate(tables);
      if (bumped instanceof Promise) bumped = bumped.catch(() => {});
    }
    const pending = this.pending;
    this.pending = null;
    if (!pending) return;
    (this.applied ??= new Map()).set(pending.domain, pending.gtid);
    if (timestamp > 0) {
      const delayMs = Math.max(0, Date.now() - timestamp * 1000);
      this.lastDelayMs = delayMs;
      this.observer.delay(delayMs / 1000);
      // Timestamps have a resolution of one second.
      this.setBehind(delayMs > this.options.maxDelayMs + 1000);
    }
    if (this.stateValue === 'catching_up' && gtidCovers(this.position(), this.target)) this.setState('streaming');
    if (this.waiters.length === 0) return;
    const position = this.position();
    const ready: ((ok: boolean) => void)[] = [];
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (gtidCovers(position, this.waiters[i].covers)) ready.push(this.waiters.splice(i, 1)[0].resolve);
    }
    // A waiter learns that a GTID was passed once its bump has landed (with memcached, once the increment is acknowledged).
    if (bumped instanceof Promise) void bumped.then(() => ready.forEach((r) => r(true)));
    else for (const r of ready) r(true);
  }

  private lost(err: Error | null): void {
    this.closeConnection();
    if (!this.running) return;
    this.options.log?.warn({ err: err?.message ?? null, position: this.position() }, 'binlog reader disconnected; reconnecting');
    this.lastError = err?.message ?? 'connection closed';
    this.pending = null;
    this.written = new Set();
    this.setState('disconnected');
    this.scheduleRetry();
  }
}

function positionMap(position: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const part of position.split(',')) {
    const gtid = part.trim();
    if (gtid === '') continue;
    out.set(Number(gtid.split('-')[0]), gtid);
  }
  return out;
}
