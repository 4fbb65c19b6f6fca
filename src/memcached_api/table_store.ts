/**
 * The memcached operations on container tables: writes on the primary, reads
 * from the cache tier or the database, each answered in memcached's terms.
 *
 * A write invalidates its key in the cache tier (and its table in the query
 * cache) before it is sent and again after its reply; see item_cache.ts for
 * why both. Operations that must be atomic are one statement each (set, add,
 * replace, cas, append, prepend, delete, touch) or a locking transaction
 * (incr, decr).
 */
import type { BackendConnection, InternalResult } from '../backend/backend_connection.js';
import { absoluteExpiry, type ArithOutcome, type DeleteOutcome, type Item, MemcachedError, StoreMode, type StoreOutcome } from './commands.js';
import { ContainerSql, type RowValues } from './container_sql.js';
import type { CachedRow, ItemCache } from './item_cache.js';

/** Runs statements on one pooled connection (the pool's use()). */
export type RunOn = <T>(operation: (conn: BackendConnection) => Promise<T>) => Promise<T>;

/** A client connection's last write (its GTID), so that its reads from replicas see it. */
export interface ReadYourWrites {
  lastGtid: string | null;
}

export interface TableStoreOptions {
  primary: RunOn;
  /**
   * With read_from: replicas, a replica whose known position includes `after`
   * (a connection's last write; null: no write yet); null sends the read to the primary.
   */
  replica?: (after: string | null) => RunOn | null;
  cache: ItemCache;
  /** True while the binlog reader streams and is current: only then can the cache tier see writes made elsewhere. */
  cacheUsable: () => boolean;
  /** Tells the query cache that a table changed ("schema.table"). */
  tableWritten: (table: string) => void;
  now?: () => number;
}

const U64_MASK = (1n << 64n) - 1n;
/** A value incr/decr accepts: a decimal number (memcached pads a shrunk value with spaces). */
const NUMERIC = /^\d{1,20} *$/;

/** ER_LOCK_DEADLOCK: two incr of a missing key raced; the loser retries once. */
const ER_LOCK_DEADLOCK = 1213;
const ER_DUP_ENTRY = 1062;

export class TableStore {
  private lastCas = 0n;
  private readonly now: () => number;

  constructor(private readonly options: TableStoreOptions) {
    this.now = options.now ?? (() => Math.floor(Date.now() / 1000));
  }

  /**
   * A cas value never handed out before by this process: milliseconds since
   * the epoch times 4096, then one more for each further value.
   */
  nextCas(): bigint {
    const fromClock = BigInt(Date.now()) * 4096n;
    this.lastCas = fromClock > this.lastCas ? fromClock : this.lastCas + 1n;
    return this.lastCas;
  }

  /**
   * What the cache tier holds for `key` now: the item, null for a known miss
   * (or an expired item), undefined when the database must be asked.
   */
  peek(sql: ContainerSql, key: Buffer): Item | null | undefined {
    const cache = this.options.cache;
    if (!cache.enabled || !this.options.cacheUsable()) return undefined;
    // lookup() already answers an expired item as a known miss.
    return cache.lookup(sql.container.name, key, this.now())?.item;
  }

  /** Items of `keys` (null for a miss), from the cache tier where it may answer. */
  async get(sql: ContainerSql, keys: readonly Buffer[], rw: ReadYourWrites | null = null): Promise<(Item | null)[]> {
    const name = sql.container.name;
    const now = this.now();
    const out: (Item | null)[] = new Array(keys.length).fill(null);
    const cache = this.options.cache;
    const useCache = cache.enabled && this.options.cacheUsable();
    const missing: number[] = [];
    for (let i = 0; i < keys.length; i++) {
      const hit = useCache ? cache.lookup(name, keys[i], now) : undefined;
      if (hit) out[i] = hit.item;
      else missing.push(i);
    }
    if (missing.length === 0) return out;
    const wanted = dedupe(missing.map((i) => keys[i]));
    // A replica's answer may be older than another connection's write: it is never stored in the tier.
    const replica = this.options.replica?.(rw?.lastGtid ?? null) ?? null;
    const tickets = useCache && !replica ? wanted.map((k) => cache.ticket(name, k)) : null;
    // A key column that compares by collation (not VARBINARY) may answer with other bytes than asked: one
    // SELECT per key (in one round trip) tells which row belongs to which key.
    const statements = sql.exactKeys ? [sql.select(wanted)] : wanted.map((k) => sql.select([k]));
    const results = await (replica ?? this.options.primary)((conn) => conn.queriesAsBytes(statements));
    const rows = sql.exactKeys ? rowsByKey(sql, throwIfError(results[0]), now) : byPosition(sql, results, wanted, now);
    if (tickets && this.options.cacheUsable()) {
      wanted.forEach((k, i) => cache.fill(name, k, tickets[i], rows.get(k.toString('latin1')) ?? { item: null, expiry: 0 }));
    }
    for (const i of missing) {
      const row = rows.get(keys[i].toString('latin1'));
      out[i] = row && isLive(row, now) ? withKey(row.item, keys[i]) : null;
    }
    return out;
  }

  /** gat: a new expiry for a live item, then the item. */
  async getAndTouch(sql: ContainerSql, key: Buffer, exptime: number, rw: ReadYourWrites | null = null): Promise<Item | null> {
    const now = this.now();
    const expiry = absoluteExpiry(exptime, now);
    const [touched, read] = await this.write(sql, key, rw, (conn) => conn.queriesAsBytes([sql.touch(key, expiry, now), sql.select([key])]));
    throwIfError(touched);
    const row = onlyRow(sql, throwIfError(read), now);
    return row && isLive(row, now) ? withKey(row.item, key) : null;
  }

  async store(sql: ContainerSql, mode: StoreMode, key: Buffer, value: Buffer, flags: number, exptime: number, cas: bigint, rw: ReadYourWrites | null = null): Promise<{ outcome: StoreOutcome; cas: bigint }> {
    const now = this.now();
    const newCas = this.nextCas();
    if (mode === StoreMode.Append || mode === StoreMode.Prepend) {
      const expected = cas === 0n ? null : cas;
      const statement = sql.concat(key, value, mode === StoreMode.Append, newCas, now, expected);
      const outcome = await this.updateOrClassify(sql, key, rw, statement, now, expected, 'not_stored');
      return { outcome, cas: newCas };
    }
    const row: RowValues = { values: splitValue(sql, value), flags, cas: newCas, expiry: absoluteExpiry(exptime, now) };
    switch (mode) {
      case StoreMode.Set: {
        const [r] = await this.write(sql, key, rw, (conn) => conn.queriesAsBytes([sql.set(key, row)]));
        throwIfError(r);
        return { outcome: 'stored', cas: newCas };
      }
      case StoreMode.Add: {
        const [r] = await this.write(sql, key, rw, (conn) => conn.queriesAsBytes([sql.add(key, row, now)]));
        const affected = throwIfError(r).ok?.affectedRows ?? 0;
        return { outcome: affected > 0 ? 'stored' : 'not_stored', cas: newCas };
      }
      case StoreMode.Replace:
        return { outcome: await this.updateOrClassify(sql, key, rw, sql.replace(key, row, now, null), now, null, 'not_stored'), cas: newCas };
      case StoreMode.Cas:
        return { outcome: await this.updateOrClassify(sql, key, rw, sql.replace(key, row, now, cas), now, cas, 'not_found'), cas: newCas };
    }
  }

  async delete(sql: ContainerSql, key: Buffer, cas: bigint, rw: ReadYourWrites | null = null): Promise<DeleteOutcome> {
    const now = this.now();
    const expected = cas === 0n ? null : cas;
    const outcome = await this.updateOrClassify(sql, key, rw, sql.delete(key, now, expected), now, expected, 'not_found', true);
    return outcome === 'stored' ? 'deleted' : outcome === 'exists' ? 'exists' : 'not_found';
  }

  async touch(sql: ContainerSql, key: Buffer, exptime: number, rw: ReadYourWrites | null = null): Promise<boolean> {
    const now = this.now();
    const [update, check] = await this.write(sql, key, rw, (conn) => conn.queriesAsBytes([sql.touch(key, absoluteExpiry(exptime, now), now), sql.exists(key, now)]));
    return (throwIfError(update).ok?.affectedRows ?? 0) > 0 || throwIfError(check).rows.length > 0;
  }

  /** incr/decr in a locking transaction (retried once if two creations of the same key deadlock). */
  async arith(sql: ContainerSql, key: Buffer, incr: boolean, delta: bigint, initial: bigint | null, exptime: number, rw: ReadYourWrites | null = null): Promise<ArithOutcome> {
    try {
      return await this.arithOnce(sql, key, incr, delta, initial, exptime, rw);
    } catch (err) {
      if (!(err instanceof SqlFailure) || (err.code !== ER_LOCK_DEADLOCK && err.code !== ER_DUP_ENTRY)) throw err;
      return this.arithOnce(sql, key, incr, delta, initial, exptime, rw);
    }
  }

  private async arithOnce(sql: ContainerSql, key: Buffer, incr: boolean, delta: bigint, initial: bigint | null, exptime: number, rw: ReadYourWrites | null): Promise<ArithOutcome> {
    const now = this.now();
    return this.write(sql, key, rw, async (conn) => {
      const [begin, read] = await conn.queriesAsBytes(['START TRANSACTION', sql.select([key], true)]);
      try {
        throwIfError(begin);
        const row = onlyRow(sql, throwIfError(read), now);
        const cas = this.nextCas();
        let next: bigint;
        let statement: string;
        if (!row || !isLive(row, now)) {
          if (initial === null) return await rollback(conn, { outcome: 'not_found' });
          next = initial;
          const values = splitValue(sql, Buffer.from(String(next)));
          // An expired row is replaced as if it were not there.
          statement = sql.set(key, { values, flags: 0, cas, expiry: absoluteExpiry(exptime, now) });
        } else {
          const text = (row.item as Item).value.toString('latin1');
          if (!NUMERIC.test(text)) return await rollback(conn, { outcome: 'non_numeric' });
          const current = BigInt(text.trimEnd());
          next = incr ? (current + delta) & U64_MASK : current > delta ? current - delta : 0n;
          const item = row.item as Item;
          statement = sql.set(key, { values: splitValue(sql, Buffer.from(String(next))), flags: item.flags, cas, expiry: row.expiry });
        }
        const [update, commit] = await conn.queriesAsBytes([statement, 'COMMIT']);
        throwIfError(update);
        throwIfError(commit);
        return { outcome: 'ok', value: next, cas };
      } catch (err) {
        if (err instanceof SqlFailure) await conn.queries(['ROLLBACK']);
        throw err;
      }
    });
  }

  /** Deletes every row of the container's table (flush_all). */
  async flush(sql: ContainerSql): Promise<void> {
    const [r] = await this.options.primary((conn) => conn.queriesAsBytes([sql.flush()]));
    throwIfError(r);
    this.options.cache.invalidateContainer(sql.container.name);
    this.options.tableWritten(`${sql.container.schema}.${sql.container.table}`);
  }

  /**
   * An UPDATE/DELETE that names one live row: 'stored' when it changed it.
   * When it changed nothing, a read in the same round trip tells why: with an
   * expected cas, a live row means the cas differed ('exists'); without, a
   * live row means the new values equalled the old ('stored').
   */
  private async updateOrClassify(sql: ContainerSql, key: Buffer, rw: ReadYourWrites | null, statement: string, now: number, expectedCas: bigint | null, absent: StoreOutcome, deleting = false): Promise<StoreOutcome> {
    const [update, check] = await this.write(sql, key, rw, (conn) => conn.queriesAsBytes([statement, sql.exists(key, now)]));
    if ((throwIfError(update).ok?.affectedRows ?? 0) > 0) return 'stored';
    const live = throwIfError(check).rows.length > 0;
    if (!live) return absent;
    if (expectedCas !== null) return 'exists';
    // A delete that removed nothing while a live row is there lost a race with a set: report what it did.
    return deleting ? absent : 'stored';
  }

  /** A key's entries in the tier; the whole container's when keys compare by collation (`foo` may be `Foo`'s row). */
  private invalidate(sql: ContainerSql, key: Buffer): void {
    if (sql.exactKeys) this.options.cache.invalidateKey(sql.container.name, key);
    else this.options.cache.invalidateContainer(sql.container.name);
  }

  /** Runs a write on the primary, with the key invalidated before and after. */
  private async write<T>(sql: ContainerSql, key: Buffer, rw: ReadYourWrites | null, operation: (conn: BackendConnection) => Promise<T>): Promise<T> {
    const table = `${sql.container.schema}.${sql.container.table}`;
    this.invalidate(sql, key);
    this.options.tableWritten(table);
    try {
      if (!rw || !this.options.replica) return await this.options.primary(operation);
      return await this.options.primary(async (conn) => {
        const result = await operation(conn);
        // The write's GTID, for this connection's later reads from replicas ('' when it changed nothing).
        const [gtid] = await conn.queries(['SELECT @@last_gtid']);
        const value = gtid.rows[0]?.[0];
        if (value) rw.lastGtid = value;
        return result;
      });
    } finally {
      this.invalidate(sql, key);
      this.options.tableWritten(table);
    }
  }
}

/** A statement the server refused. */
export class SqlFailure extends MemcachedError {
  constructor(readonly code: number, message: string) {
    super('server', `database error ${code}: ${message}`);
  }
}

function throwIfError<T>(result: InternalResult<T>): InternalResult<T> {
  if (result.error) throw new SqlFailure(result.error.code, result.error.message);
  return result;
}

async function rollback<T>(conn: BackendConnection, value: T): Promise<T> {
  await conn.queries(['ROLLBACK']);
  return value;
}

function isLive(row: CachedRow, now: number): boolean {
  return row.item !== null && (row.expiry === 0 || row.expiry > now);
}

/** The key as the client wrote it (the column may compare case-insensitively or pad). */
function withKey(item: Item | null, key: Buffer): Item | null {
  return item && { ...item, key };
}

function dedupe(keys: Buffer[]): Buffer[] {
  const seen = new Set<string>();
  return keys.filter((k) => {
    const id = k.toString('latin1');
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** The row of a one-key SELECT (whatever bytes the server's collation matched). */
function onlyRow(sql: ContainerSql, result: InternalResult<Buffer>, now: number): CachedRow | undefined {
  return rowsByKey(sql, { ...result, rows: result.rows.slice(0, 1) }, now).values().next().value;
}

/** One-key SELECTs in the order of `keys`: each key's row, by the key as asked. */
function byPosition(sql: ContainerSql, results: InternalResult<Buffer>[], keys: readonly Buffer[], now: number): Map<string, CachedRow> {
  const out = new Map<string, CachedRow>();
  keys.forEach((k, i) => {
    const row = onlyRow(sql, throwIfError(results[i]), now);
    if (row) out.set(k.toString('latin1'), row);
  });
  return out;
}

/** The rows of a SELECT built by ContainerSql, by key (latin1 text of the key bytes). */
function rowsByKey(sql: ContainerSql, result: InternalResult<Buffer>, now: number): Map<string, CachedRow> {
  const n = sql.container.valueColumns.length;
  const separator = Buffer.from(sql.container.separator, 'utf8');
  const out = new Map<string, CachedRow>();
  for (const r of result.rows) {
    const key = r[0] ?? Buffer.alloc(0);
    const parts = r.slice(1, 1 + n).map((v) => v ?? Buffer.alloc(0));
    const value = n === 1 ? parts[0] : Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [p] : [separator, p])));
    const flags = Number(r[1 + n]?.toString('latin1') ?? 0) >>> 0;
    const cas = BigInt(r[2 + n]?.toString('latin1') ?? '0');
    const expiry = Number(r[3 + n]?.toString('latin1') ?? 0);
    const row: CachedRow = { item: { key, flags, cas, value }, expiry };
    out.set(key.toString('latin1'), expiry !== 0 && expiry <= now ? { item: null, expiry: 0 } : row);
  }
  return out;
}

/** A value for a container with several value columns is split at its separator (the last column takes the rest). */
function splitValue(sql: ContainerSql, value: Buffer): Buffer[] {
  const n = sql.container.valueColumns.length;
  if (n === 1) return [value];
  const separator = Buffer.from(sql.container.separator, 'utf8');
  const parts: Buffer[] = [];
  let at = 0;
  while (parts.length < n - 1) {
    const i = value.indexOf(separator, at);
    if (i < 0) break;
    parts.push(value.subarray(at, i));
    at = i + separator.length;
  }
  parts.push(value.subarray(at));
  while (parts.length < n) parts.push(Buffer.alloc(0));
  return parts;
}
