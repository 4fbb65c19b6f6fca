/**
 * Reads the primary's views, stored functions and base tables
 * (information_schema.VIEWS, ROUTINES and TABLES) for the query cache and
 * the sessions: a cached read of a view depends on the view's base tables, a
 * statement calling a stored function is neither cached nor sent to a
 * replica, and only a read of known base tables leaves a connection fit for
 * another client without a reset. At start, every
 * `intervalMs`, and at once when the binlog reader or a session sees DDL. A
 * failed read keeps the last lists.
 */
import mysql from 'mysql2/promise';
import type { FunctionName, TableName, ViewDefinition } from '../cache/schema_catalog.js';
import type { BackendEndpoint } from '../config/types.js';

export interface SchemaReaderOptions {
  /** An account that may read every view's definition (SHOW VIEW): the monitor's, by default. */
  user: string;
  password: string;
  primary: () => BackendEndpoint | null;
  apply: (views: ViewDefinition[], functions: FunctionName[], tables: TableName[]) => void | Promise<void>;
  intervalMs: number;
  connectTimeoutMs: number;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

const VIEWS_SQL = 'SELECT TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS';
const FUNCTIONS_SQL = "SELECT ROUTINE_SCHEMA, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_TYPE = 'FUNCTION'";
/** Plain tables: not views, sequences or system views, and not performance_schema's (a session's own counters and history). */
const TABLES_SQL =
  "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') AND TABLE_SCHEMA NOT IN ('performance_schema', 'information_schema')";

/** A read that takes longer is given up (a metadata lock behind an ALTER, a stalled network): the last lists stay. */
const READ_TIMEOUT_MS = 5000;

export class SchemaReader {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** The read queued behind the running one, which every refresh() asked meanwhile waits for. */
  private next: Promise<void> | null = null;
  private failing = false;
  private stopped = false;

  constructor(private readonly options: SchemaReaderOptions) {}

  /** Reads once (awaited, bounded by the connect and read timeouts), then every interval. */
  async start(): Promise<void> {
    await this.refresh();
    if (this.stopped) return;
    this.timer = setInterval(() => void this.refresh(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Reads the lists now. A call while a read runs waits for a read that
   * starts after it (the running one may have begun before the DDL that
   * asks). Bounded: a read gives up after its connect and read timeouts.
   */
  refresh(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.next ??= this.running.then(() => {
        this.next = null;
        return this.refresh();
      });
      return this.next;
    }
    this.running = this.read().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async read(): Promise<void> {
    const primary = this.options.primary();
    if (!primary) return;
    let conn: mysql.Connection | null = null;
    try {
      conn = await mysql.createConnection({
        host: primary.host,
        port: primary.port,
        user: this.options.user,
        password: this.options.password,
        connectTimeout: this.options.connectTimeoutMs,
      });
      conn.on('error', () => undefined);
      const [rows] = await conn.query<mysql.RowDataPacket[]>({ sql: VIEWS_SQL, rowsAsArray: true, timeout: READ_TIMEOUT_MS });
      const views = rows.map((r) => ({ schema: String(r[0]), name: String(r[1]), definition: r[2] === null || r[2] === '' ? null : String(r[2]) }));
      const [routines] = await conn.query<mysql.RowDataPacket[]>({ sql: FUNCTIONS_SQL, rowsAsArray: true, timeout: READ_TIMEOUT_MS });
      const [tables] = await conn.query<mysql.RowDataPacket[]>({ sql: TABLES_SQL, rowsAsArray: true, timeout: READ_TIMEOUT_MS });
      if (this.stopped) return;
      const names = (rows: mysql.RowDataPacket[]) => rows.map((r) => ({ schema: String(r[0]), name: String(r[1]) }));
      await this.options.apply(views, names(routines), names(tables));
      if (this.failing) this.options.log.info({ views: views.length }, 'views read again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.options.log.warn({ err: (err as Error).message }, 'reading the primary\'s views and functions failed; keeping the last lists');
      this.failing = true;
    } finally {
      conn?.destroy();
    }
  }
}
