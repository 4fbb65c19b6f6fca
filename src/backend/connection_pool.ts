/**
 * A small pool of logged-in backend connections to one server, for the
 * proxy's own statements (the memcached API's table operations).
 *
 * A connection is used by one operation at a time. An operation that throws
 * (the socket broke) or overruns its time limit takes its connection with it:
 * the connection may still be mid-result, so it can never be reused. When the
 * endpoint changes (a failover), idle connections to the old one are dropped.
 */
import { BackendConnection, type BackendLogin } from './backend_connection.js';
import type { BackendEndpoint } from '../config/types.js';

export interface ConnectionPoolOptions {
  /** Most connections open at once; further operations wait for one. */
  maxConnections: number;
  connectTimeoutMs: number;
  /** An operation (waiting for a connection included) that takes longer fails. */
  operationTimeoutMs: number;
}

/** The pool could not serve an operation in time, or the server is unreachable. */
export class PoolError extends Error {}

interface Waiter {
  resolve(conn: BackendConnection | null): void;
}

export class ConnectionPool {
  private readonly idle: BackendConnection[] = [];
  private readonly waiters: Waiter[] = [];
  private open = 0;
  private closed = false;
  /** host:port the idle connections belong to. */
  private idleFor = '';

  constructor(
    private readonly endpoint: () => BackendEndpoint,
    private readonly login: BackendLogin,
    private readonly options: ConnectionPoolOptions,
  ) {}

  /** Connections open now (idle and in use). */
  get size(): number {
    return this.open;
  }

  /** Runs `operation` on a connection of its own; rejects with PoolError on timeout. */
  async use<T>(operation: (conn: BackendConnection) => Promise<T>): Promise<T> {
    if (this.closed) throw new PoolError('the pool is closed');
    let timer: NodeJS.Timeout | undefined;
    let conn: BackendConnection | null = null;
    let expired = false;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        expired = true;
        reject(new PoolError(`no answer from ${this.describe()} within ${this.options.operationTimeoutMs} ms`));
      }, this.options.operationTimeoutMs);
    });
    deadline.catch(() => {});
    const acquiring = this.acquire();
    try {
      try {
        conn = await Promise.race([acquiring, deadline]);
      } catch (err) {
        // The connection that arrives after the deadline goes back to the pool.
        if (expired) acquiring.then((late) => this.release(late), () => {});
        throw err;
      }
      return await Promise.race([operation(conn), deadline]);
    } catch (err) {
      if (conn) {
        this.discard(conn);
        conn = null;
      }
      throw err;
    } finally {
      clearTimeout(timer);
      if (conn) this.release(conn);
    }
  }

  /** Closes every connection; operations in flight finish or fail on their own. */
  close(): void {
    this.closed = true;
    for (const conn of this.idle.splice(0)) {
      this.open--;
      conn.quit();
    }
    for (const w of this.waiters.splice(0)) w.resolve(null);
  }

  private describe(): string {
    const e = this.endpoint();
    return `${e.name} (${e.host}:${e.port})`;
  }

  private async acquire(): Promise<BackendConnection> {
    const e = this.endpoint();
    const key = `${e.host}:${e.port}`;
    if (key !== this.idleFor) {
      for (const old of this.idle.splice(0)) {
        this.open--;
        old.quit();
      }
      this.idleFor = key;
    }
    for (let ready = this.idle.pop(); ready; ready = this.idle.pop()) {
      // The server may have closed an idle connection (wait_timeout, a restart).
      if (!ready.closed) return ready;
      this.open--;
    }
    if (this.open < this.options.maxConnections) {
      this.open++;
      try {
        return await BackendConnection.connect(e, this.login, this.options.connectTimeoutMs);
      } catch (err) {
        this.open--;
        this.wakeOne();
        throw new PoolError(`cannot reach ${this.describe()}: ${(err as Error).message}`);
      }
    }
    const conn = await new Promise<BackendConnection | null>((resolve) => this.waiters.push({ resolve }));
    if (!conn) {
      if (this.closed) throw new PoolError('the pool is closed');
      return this.acquire();
    }
    return conn;
  }

  private release(conn: BackendConnection): void {
    const e = this.endpoint();
    if (conn.closed || `${conn.endpoint.host}:${conn.endpoint.port}` !== `${e.host}:${e.port}`) {
      // The endpoint moved (a failover) while it was in use: it must not serve another operation.
      this.discard(conn);
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter.resolve(conn);
      return;
    }
    if (this.closed) {
      this.open--;
      conn.quit();
      return;
    }
    this.idle.push(conn);
  }

  private discard(conn: BackendConnection): void {
    this.open--;
    conn.destroy();
    this.wakeOne();
  }

  /** A slot freed up: a waiter may open a connection of its own. */
  private wakeOne(): void {
    this.waiters.shift()?.resolve(null);
  }
}
