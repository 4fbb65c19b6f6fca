/**
 * The memcached API against the shared topology: a container table, a config
 * (cache tier and binlog reader on, as the demo runs it), and a raw text client.
 */
import net from 'node:net';
import type mysql from 'mysql2/promise';
import type { TopologyInfo } from '../scripts/topology.js';
import type { ContainerConfig, MemcachedApiConfig, WirecacheConfig } from '../src/config/types.js';
import { testCacheConfig } from './proxy-harness.js';

/** The recommended table: a VARBINARY key (compared byte for byte) and the plugin's flags/cas/expiry columns. */
export function containerTableSql(table: string): string {
  return `CREATE TABLE ${table} (
    id VARBINARY(250) NOT NULL PRIMARY KEY,
    value MEDIUMBLOB NOT NULL,
    flags INT UNSIGNED NOT NULL DEFAULT 0,
    cas BIGINT UNSIGNED NOT NULL DEFAULT 0,
    expiry INT UNSIGNED NOT NULL DEFAULT 0
  ) ENGINE=InnoDB`;
}

export function container(name: string, schema: string, table: string, extra: Partial<ContainerConfig> = {}): ContainerConfig {
  return {
    name,
    schema,
    table,
    keyColumn: 'id',
    valueColumns: ['value'],
    separator: '|',
    flagsColumn: 'flags',
    casColumn: 'cas',
    expiryColumn: 'expiry',
    ...extra,
  };
}

export function memcachedApiConfig(topo: TopologyInfo, containers: ContainerConfig[], overrides: Partial<MemcachedApiConfig> = {}): MemcachedApiConfig {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    user: 'root',
    password: topo.rootPassword,
    connections: 8,
    maxConnections: 1000,
    readFrom: 'primary',
    allowFlush: false,
    sasl: false,
    maxValueBytes: 1_048_576,
    cacheBytes: 16 * 1024 * 1024,
    expirySweepSeconds: 0,
    operationTimeoutMs: 3000,
    containers,
    defaultContainer: null,
    containersTable: null,
    ...overrides,
  };
}

/** The config parts that turn on the cache tier: a query cache and the binlog reader (as root). */
export function withBinlog(topo: TopologyInfo, serverId: number): Partial<WirecacheConfig> {
  return {
    cache: testCacheConfig(),
    binlog: { enabled: 'on', user: 'root', password: topo.rootPassword, serverId, maxDelayMs: 5000, onUnavailable: 'fail_closed' },
  };
}

/** A text-protocol client: send a request, read until the reply is complete. */
export class TextClient {
  private buffer = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on('error', () => {});
  }

  static connect(port: number): Promise<TextClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(new TextClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Sends `request` and resolves with the reply once `done(reply)` says it is whole (default: one line). */
  async call(request: string | Buffer, done: (reply: string) => boolean = (r) => r.endsWith('\r\n'), timeoutMs = 5000): Promise<string> {
    this.buffer = Buffer.alloc(0);
    this.socket.write(request);
    const deadline = Date.now() + timeoutMs;
    while (!done(this.buffer.toString('latin1'))) {
      if (this.closed) break;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no complete reply to ${JSON.stringify(String(request).slice(0, 60))}: got ${JSON.stringify(this.buffer.toString('latin1'))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = null;
    }
    return this.buffer.toString('latin1');
  }

  /** A get/gets: the reply ends with END. */
  get(request: string): Promise<string> {
    return this.call(request, (r) => r.endsWith('END\r\n') || /(^|\r\n)(CLIENT_|SERVER_)?ERROR[^\r]*\r\n$/.test(r));
  }

  close(): void {
    this.socket.destroy();
  }
}

export async function rowOf(root: mysql.Connection, table: string, id: string): Promise<Record<string, unknown> | undefined> {
  const [rows] = await root.query(`SELECT * FROM ${table} WHERE id = ?`, [id]);
  return (rows as Record<string, unknown>[])[0];
}
