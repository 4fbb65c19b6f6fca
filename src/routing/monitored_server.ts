/**
 * One backend as the server monitor sees it: its long-lived monitor
 * connection and the check run on it every round (read_only, server_id, GTID
 * position, replication threads and Seconds_Behind_Master), plus the timeout
 * and error helpers the monitor's checks share.
 */
import { performance } from 'node:perf_hooks';
import mysql from 'mysql2';
import type { Connection as CoreConnection, RowDataPacket } from 'mysql2';
import type { Connection as PromiseConnection } from 'mysql2/promise';
import type { BackendConfig, MonitorConfig } from '../config/types.js';
import type { MonitorLogger, ServerStatus } from './server_status.js';

/** stop(): how long a graceful COM_QUIT may take before the socket is destroyed. */
const CLOSE_GRACE_MS = 1000;

export class CheckTimeout extends Error {
  constructor(what: string, ms: number) {
    super(`${what} timed out after ${ms} ms`);
    this.name = 'CheckTimeout';
  }
}

/** Races `p` against a timer; `onTimeout` runs when the timer wins. `p`'s later rejection is handled. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string, onTimeout?: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      try {
        onTimeout?.();
      } finally {
        reject(new CheckTimeout(what, ms));
      }
    }, ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

export function describeError(e: unknown): string {
  if (e instanceof CheckTimeout) return e.message;
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return code !== undefined && !e.message.includes(String(code)) ? `${String(code)}: ${e.message}` : e.message;
  }
  return String(e);
}

export const isFatal = (e: unknown): boolean => e instanceof CheckTimeout || (e as { fatal?: unknown } | null)?.fatal === true;
const errno = (e: unknown): number | undefined => (e as { errno?: number } | null)?.errno;

function destroyCore(core: CoreConnection): void {
  try {
    core.destroy();
  } catch {
    /* already closed */
  }
  // close() only half-closes (FIN): make sure the socket goes away even if the server never answers.
  try {
    (core as unknown as { stream?: { destroy?: () => void } }).stream?.destroy?.();
  } catch {
    /* ignore */
  }
}

interface ReplicaInfo {
  io: string;
  sql: string;
  secondsBehind: number | null;
  lastIoError: string;
  lastSqlError: string;
}

interface ProbeResult {
  ok: boolean;
  error: string | null;
  readOnly: boolean | null;
  serverId: number | null;
  gtid: string | null;
  flavor: 'mariadb' | 'mysql' | null;
  /** undefined: unknown (SHOW SLAVE STATUS not allowed); null: not a replica. */
  replica: ReplicaInfo | null | undefined;
  ms: number;
}

/** What a MonitoredServer needs from its monitor. */
export interface MonitorContext {
  readonly cfg: MonitorConfig;
  readonly log: MonitorLogger;
  /** The monitor is stopping: a connection that opens now is abandoned. */
  stopped(): boolean;
}

export class MonitoredServer {
  readonly status: ServerStatus;
  core: CoreConnection | null = null;
  conn: PromiseConnection | null = null;
  /** Bumped whenever the connection is dropped: a connect or check of an older generation is stale. */
  gen = 0;
  /** Flavor of the current connection (null until asked). */
  connFlavor: 'mariadb' | 'mysql' | null = null;
  /** Statement that worked for the replica status on this server. */
  replicaStatusSql: string | null = null;
  /** The heartbeat table was verified on the current connection. */
  hbReady = false;
  /** binlog_format allows the single-statement guarded heartbeat write (not STATEMENT). */
  hbGuarded = true;
  checked = false;
  warnedReplicaStatus = false;

  constructor(
    readonly cfg: BackendConfig,
    private readonly ctx: MonitorContext,
  ) {
    this.status = {
      name: cfg.name,
      host: cfg.host,
      port: cfg.port,
      weight: cfg.weight,
      configuredRole: cfg.role,
      state: 'down',
      reachable: false,
      readOnly: null,
      replicating: null,
      lagSeconds: null,
      lagSource: null,
      gtidPosition: null,
      serverId: null,
      consecutiveBad: 0,
      consecutiveGood: 0,
      inRotation: false,
      lastError: null,
      lastCheckAt: null,
      flavor: null,
    };
  }

  // -------------------------------------------------------------------------
  // connection

  private async getConn(): Promise<PromiseConnection> {
    if (this.conn) return this.conn;
    const { cfg, log } = this.ctx;
    const gen = this.gen;
    const core = mysql.createConnection({
      host: this.cfg.host,
      port: this.cfg.port,
      user: cfg.user,
      password: cfg.password,
      connectTimeout: cfg.checkTimeoutMs,
      multipleStatements: false,
    });
    // Attached before anything can happen: an 'error' without listener would crash the process.
    core.on('error', (err: unknown) => {
      log.debug?.({ server: this.cfg.name, err: describeError(err) }, 'monitor connection error');
      if (this.core === core) this.dropConn();
      else destroyCore(core);
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: unknown): void => {
        core.removeListener('connect', onConnect);
        reject(err);
      };
      const onConnect = (): void => {
        core.removeListener('error', onError);
        resolve();
      };
      core.once('error', onError);
      core.once('connect', onConnect);
    }).catch((err: unknown) => {
      destroyCore(core);
      throw err;
    });
    if (this.ctx.stopped() || this.gen !== gen) {
      // the check that wanted it timed out meanwhile (or we are stopping)
      destroyCore(core);
      throw new Error('connection abandoned');
    }
    this.core = core;
    this.conn = core.promise();
    this.connFlavor = null;
    this.hbReady = false;
    return this.conn;
  }

  /** Forgets (and destroys) the connection; with `gen`, only if it is still that generation's. */
  dropConn(gen?: number): void {
    if (gen !== undefined && gen !== this.gen) return;
    this.gen++;
    const core = this.core;
    this.core = null;
    this.conn = null;
    this.hbReady = false;
    if (core) destroyCore(core);
  }

  async closeConn(): Promise<void> {
    const core = this.core;
    this.gen++;
    this.core = null;
    this.conn = null;
    if (!core) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => {
        try {
          core.end(() => resolve());
        } catch {
          resolve();
        }
      }),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_GRACE_MS);
      }),
    ]);
    clearTimeout(timer);
    destroyCore(core);
  }

  // -------------------------------------------------------------------------
  // check

  async probe(): Promise<ProbeResult> {
    const t0 = performance.now();
    const gen = this.gen;
    try {
      const r = await withTimeout(this.doProbe(), this.ctx.cfg.checkTimeoutMs, 'check', () => this.dropConn(gen));
      r.ms = performance.now() - t0;
      return r;
    } catch (err) {
      if (isFatal(err)) this.dropConn(gen);
      return {
        ok: false,
        error: describeError(err),
        readOnly: null,
        serverId: null,
        gtid: null,
        flavor: null,
        replica: undefined,
        ms: performance.now() - t0,
      };
    }
  }

  private async doProbe(): Promise<ProbeResult> {
    const conn = await this.getConn();
    if (this.connFlavor === null) {
      const [rows] = await conn.query<RowDataPacket[]>('SELECT @@version AS ver');
      this.connFlavor = /mariadb/i.test(String(rows[0]?.ver ?? '')) ? 'mariadb' : 'mysql';
    }
    const flavor = this.connFlavor;
    const gtidVar = flavor === 'mariadb' ? '@@global.gtid_current_pos' : '@@global.gtid_executed';
    const [vars] = await conn.query<RowDataPacket[]>(
      `SELECT @@global.read_only AS ro, @@server_id AS sid, @@version AS ver, ${gtidVar} AS gtid`,
    );
    const v = vars[0] ?? {};
    const replica = await this.replicaStatus(conn, flavor);
    const gtid = v.gtid === null || v.gtid === undefined ? null : String(v.gtid).replace(/\s+/g, '');
    return {
      ok: true,
      error: null,
      readOnly: Number(v.ro) !== 0,
      serverId: v.sid === null || v.sid === undefined ? null : Number(v.sid),
      gtid,
      flavor,
      replica,
      ms: 0,
    };
  }

  private async replicaStatus(conn: PromiseConnection, flavor: 'mariadb' | 'mysql'): Promise<ReplicaInfo | null | undefined> {
    const candidates = this.replicaStatusSql
      ? [this.replicaStatusSql]
      : flavor === 'mariadb'
        ? ['SHOW SLAVE STATUS']
        : ['SHOW REPLICA STATUS', 'SHOW SLAVE STATUS'];
    let lastErr: unknown;
    for (const sql of candidates) {
      let rows: RowDataPacket[];
      try {
        [rows] = await conn.query<RowDataPacket[]>(sql);
      } catch (err) {
        if (isFatal(err)) throw err;
        lastErr = err;
        if (errno(err) === 1064) continue; // syntax: try the older statement
        break;
      }
      this.replicaStatusSql = sql;
      const r = rows[0];
      if (r === undefined) return null;
      const str = (a: unknown, b: unknown): string => String(a ?? b ?? '');
      const sbm = r.Seconds_Behind_Master ?? r.Seconds_Behind_Source ?? null;
      return {
        io: str(r.Slave_IO_Running, r.Replica_IO_Running),
        sql: str(r.Slave_SQL_Running, r.Replica_SQL_Running),
        secondsBehind: sbm === null ? null : Number(sbm),
        lastIoError: str(r.Last_IO_Error, ''),
        lastSqlError: str(r.Last_SQL_Error, ''),
      };
    }
    if (!this.warnedReplicaStatus) {
      this.warnedReplicaStatus = true;
      this.ctx.log.warn(
        { server: this.cfg.name, err: describeError(lastErr) },
        'cannot read the replication status (the monitor user needs REPLICATION CLIENT / SLAVE MONITOR)',
      );
    }
    return undefined;
  }
}
