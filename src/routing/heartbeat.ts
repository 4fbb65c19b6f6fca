/**
 * Replication lag measured with a heartbeat table: on the server believed to
 * be the primary the monitor upserts its own row (`proxy_id` is random per
 * monitor instance) with an increasing `seq`, and remembers in memory (a
 * bounded ring) when it wrote each seq, by its own monotonic clock. On a
 * replica it reads back its row: having the latest acknowledged seq means lag
 * 0; otherwise the lag is the age of the oldest write the replica does not
 * have yet. No server clocks are compared.
 */
import { performance } from 'node:perf_hooks';
import type { ResultSetHeader, RowDataPacket } from 'mysql2';
import type { Connection as PromiseConnection } from 'mysql2/promise';
import { CheckTimeout, describeError, isFatal, withTimeout, type MonitoredServer } from './monitored_server.js';
import type { MonitorLogger } from './server_status.js';

/** How many heartbeat writes the monitor remembers (seq → when written). */
const HEARTBEAT_RING = 1000;

const quoteIdent = (s: string): string => `\`${s.replace(/`/g, '``')}\``;

/** What the heartbeat needs from its monitor. */
interface HeartbeatContext {
  readonly proxyId: string;
  readonly checkTimeoutMs: number;
  readonly log: MonitorLogger;
  stopped(): boolean;
  /** The server believed to be the primary, if any. */
  primary(): MonitoredServer | undefined;
  /** Several servers are writable at once. */
  conflict(): boolean;
}

export class Heartbeat {
  readonly schema: string;
  readonly table: string;
  readonly qualified: string;

  private seq = 0;
  private latestSeq = 0;
  private readonly ring: { seq: number; at: number }[] = [];
  /** The last write worked: replicas' lag can be read from the table. */
  ok = false;
  private failReason: string | null = null;
  /** The write in flight, if any. */
  inflight: Promise<void> | null = null;

  /** `heartbeatTable`: `schema.table`, or `table` in the `wirecache` schema. */
  constructor(
    heartbeatTable: string,
    private readonly ctx: HeartbeatContext,
  ) {
    const dot = heartbeatTable.indexOf('.');
    this.schema = dot > 0 ? heartbeatTable.slice(0, dot) : 'wirecache';
    this.table = dot > 0 ? heartbeatTable.slice(dot + 1) : heartbeatTable;
    this.qualified = `${quoteIdent(this.schema)}.${quoteIdent(this.table)}`;
  }

  // -------------------------------------------------------------------------
  // writer

  write(): Promise<void> {
    if (this.ctx.stopped()) return Promise.resolve();
    if (this.inflight) return this.inflight;
    const p = this.doWrite()
      .catch((err: unknown) => this.setOk(false, describeError(err), true))
      .finally(() => {
        if (this.inflight === p) this.inflight = null;
      });
    this.inflight = p;
    return p;
  }

  private async doWrite(): Promise<void> {
    const p = this.ctx.primary();
    const skip =
      p === undefined
        ? 'no primary'
        : this.ctx.conflict()
          ? 'several servers are writable'
          : !p.status.reachable || p.conn === null
            ? 'primary unreachable'
            : p.status.readOnly !== false
              ? 'primary is read_only'
              : null;
    if (skip !== null || p === undefined || p.conn === null) {
      this.setOk(false, skip ?? 'no primary', false);
      return;
    }
    const gen = p.gen;
    try {
      // No connection drop on timeout: the next check of the primary decides about it.
      const wrote = await withTimeout(this.writeOn(p, p.conn), this.ctx.checkTimeoutMs, 'heartbeat write');
      if (wrote) this.setOk(true, null, false);
      else this.setOk(false, `${p.cfg.name} is read_only`, false);
    } catch (err) {
      if (isFatal(err) && !(err instanceof CheckTimeout)) p.dropConn(gen);
      this.setOk(false, `heartbeat write on ${p.cfg.name} failed: ${describeError(err)}`, true);
    }
  }

  /** Writes the next seq on `p`; false (nothing written) when the server is read_only. */
  private async writeOn(p: MonitoredServer, conn: PromiseConnection): Promise<boolean> {
    if (!p.hbReady) {
      const [rows] = await conn.query<RowDataPacket[]>(
        'SELECT @@global.read_only AS ro, @@session.binlog_format AS bf, ' +
          '(SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?) AS n',
        [this.schema, this.table],
      );
      const r = rows[0] ?? {};
      if (Number(r.ro) !== 0) return false;
      if (Number(r.n) === 0) {
        // Only when missing: CREATE ... IF NOT EXISTS is binlogged even when the object exists.
        await conn.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdent(this.schema)}`);
        await conn.query(
          `CREATE TABLE IF NOT EXISTS ${this.qualified} (proxy_id VARCHAR(64) PRIMARY KEY, seq BIGINT NOT NULL, written_at_us BIGINT NOT NULL) ENGINE=InnoDB`,
        );
        this.ctx.log.info({ server: p.cfg.name, table: `${this.schema}.${this.table}` }, 'created the heartbeat table');
      }
      // With statement-based binlogging the guarded INSERT ... SELECT would be replayed
      // on read-only replicas and insert nothing there.
      p.hbGuarded = String(r.bf ?? '').toUpperCase() !== 'STATEMENT';
      p.hbReady = true;
    }
    const seq = ++this.seq;
    const at = performance.now();
    const values = [this.ctx.proxyId, seq, Date.now() * 1000];
    let res: ResultSetHeader;
    if (p.hbGuarded) {
      // read_only is checked by the statement itself: a SUPER account could write
      // on a read-only server, which would break GTID replication.
      [res] = await conn.query<ResultSetHeader>(
        `INSERT INTO ${this.qualified} (proxy_id, seq, written_at_us) SELECT ?, ?, ? FROM DUAL WHERE @@global.read_only = 0 ` +
          'ON DUPLICATE KEY UPDATE seq = VALUES(seq), written_at_us = VALUES(written_at_us)',
        values,
      );
    } else {
      const [ro] = await conn.query<RowDataPacket[]>('SELECT @@global.read_only AS ro');
      if (Number(ro[0]?.ro) !== 0) return false;
      [res] = await conn.query<ResultSetHeader>(
        `INSERT INTO ${this.qualified} (proxy_id, seq, written_at_us) VALUES (?, ?, ?) ` +
          'ON DUPLICATE KEY UPDATE seq = VALUES(seq), written_at_us = VALUES(written_at_us)',
        values,
      );
    }
    if (res.affectedRows === 0) return false;
    this.ring.push({ seq, at });
    if (this.ring.length > HEARTBEAT_RING) this.ring.shift();
    this.latestSeq = seq;
    return true;
  }

  private setOk(ok: boolean, reason: string | null, isError: boolean): void {
    const log = this.ctx.log;
    if (ok) {
      if (!this.ok && this.failReason !== null) log.info({}, 'heartbeat writes work again: lag measured with the heartbeat');
      this.ok = true;
      this.failReason = null;
      return;
    }
    this.ok = false;
    if (reason !== this.failReason) {
      const o = { reason, table: `${this.schema}.${this.table}` };
      if (isError) log.warn(o, 'heartbeat not written: lag falls back to Seconds_Behind_Master');
      else log.debug?.(o, 'heartbeat not written: lag falls back to Seconds_Behind_Master');
    }
    this.failReason = reason;
  }

  // -------------------------------------------------------------------------
  // reader

  /**
   * This monitor's heartbeat seq on `e` (and when it was read), or null when
   * the server has no row (or no table) yet. Waits up to `waitMs` for a row to
   * appear (first check only). Throws when the server does not answer.
   */
  async read(e: MonitoredServer, waitMs: number): Promise<{ seq: number; at: number } | null> {
    const deadline = performance.now() + waitMs;
    for (;;) {
      const conn = e.conn;
      if (!conn) throw new Error('connection lost');
      const gen = e.gen;
      let rows: RowDataPacket[];
      try {
        [rows] = await withTimeout(
          conn.query<RowDataPacket[]>(`SELECT seq FROM ${this.qualified} WHERE proxy_id = ?`, [this.ctx.proxyId]),
          this.ctx.checkTimeoutMs,
          'heartbeat read',
          () => e.dropConn(gen),
        );
      } catch (err) {
        if (isFatal(err)) {
          e.dropConn(gen);
          throw err;
        }
        // 1146 no such table, 1049 no such database (not replicated yet), 1142 no privilege...
        rows = [];
      }
      const at = performance.now();
      if (rows[0] !== undefined) return { seq: Number(rows[0].seq), at };
      if (at >= deadline || this.ctx.stopped() || !this.ok) return null;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Lag in seconds of a replica that has heartbeat `seq` at time `at` (performance.now()). */
  lagOf(seq: number, at: number): number {
    if (seq >= this.latestSeq) return 0;
    // the oldest write the replica does not have (the ring is in seq order)
    const missing = this.ring.find((w) => w.seq > seq) ?? this.ring[this.ring.length - 1];
    if (missing === undefined) return 0;
    return Math.max(0, Math.round(at - missing.at)) / 1000;
  }
}
