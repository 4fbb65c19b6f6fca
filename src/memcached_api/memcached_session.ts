/**
 * One memcached client connection: detects the protocol from the first byte
 * (0x80 is a binary request), reads commands one at a time, runs each on the
 * table store and writes its reply before the next is read, so replies keep
 * the order of the requests. A malformed request gets the protocol's error;
 * only a stream that cannot be read further (a line or body over the limit,
 * a bad binary magic) is closed, and only this connection.
 */
import type net from 'node:net';
import {
  binaryArith,
  binaryError,
  binaryItem,
  binaryMiss,
  binaryResponse,
  binaryStats,
  binaryVersion,
  BinaryStatus,
  decodeBinaryRequest,
  readBinaryFrame,
  suppressesResponse,
  type BinaryRequest,
} from './binary_protocol.js';
import { type ArithOutcome, type DeleteOutcome, type Item, MemcachedError, type MemcachedCommand, StoreMode } from './commands.js';
import type { ContainerSql } from './container_sql.js';
import type { ReadYourWrites, TableStore } from './table_store.js';
import { readTextCommand, textItems, textLine, textStats, type TextLimits, type TextParse } from './text_protocol.js';

/** What every session shares (the server's). */
export interface MemcachedSessionContext {
  store: TableStore;
  /** The container of a name; undefined when there is none of that name. */
  container(name: string): ContainerSql | undefined;
  defaultContainer(): ContainerSql;
  limits: TextLimits;
  allowFlush: boolean;
  /** Flushes every container (flush_all when allowed). */
  flushAll(delaySeconds: number): Promise<void>;
  /** Binary clients must authenticate first; `authenticate` checks a user and password. */
  saslRequired: boolean;
  authenticate(user: string, password: string): boolean;
  /** The statistics of a group ('' for the general ones); null for a group there is none of. */
  stats(group: string): [string, string][] | null;
  version: string;
  /** A command finished (for the metrics): its name, container and outcome. */
  observe(command: string, container: string, outcome: string, seconds: number): void;
  onError(err: unknown): void;
}

/** Unread input beyond this pauses the socket until the commands before it are answered. */
const PAUSE_AT_BYTES = 4 * 1024 * 1024;

type Resolved = { sql: ContainerSql; key: Buffer };

export class MemcachedSession {
  private buffer: Buffer = Buffer.alloc(0);
  private binary: boolean | null = null;
  private running = false;
  private closed = false;
  private authenticated = false;
  /** The container of keys without `@@name.` (switched by `get @@name`). */
  private current: ContainerSql | null = null;
  /** This connection's last write, so that its reads from replicas see it. */
  private readonly writes: ReadYourWrites = { lastGtid: null };
  /** Bytes of a too-large value still to arrive, dropped as they come. */
  private discard = 0;

  constructor(
    private readonly socket: net.Socket,
    private readonly ctx: MemcachedSessionContext,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.close());
    socket.on('close', () => (this.closed = true));
  }

  private onData(chunk: Buffer): void {
    if (this.discard > 0) {
      // The rest of a value too large to take.
      const dropped = Math.min(this.discard, chunk.length);
      this.discard -= dropped;
      if (dropped === chunk.length) return;
      chunk = chunk.subarray(dropped);
    }
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    if (this.buffer.length > PAUSE_AT_BYTES + this.ctx.limits.maxValueBytes) this.socket.pause();
    if (!this.running) void this.drain();
  }

  private close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  /**
   * Answers every complete command in the buffer, in order. Commands answered
   * without the database (tier hits, parse errors) run synchronously, and the
   * replies of one pass go out in one write (the socket is corked except while
   * a command waits for the database).
   */
  private async drain(): Promise<void> {
    this.running = true;
    this.socket.cork();
    try {
      while (!this.closed && this.buffer.length > 0) {
        if (this.binary === null) this.binary = this.buffer[0] === 0x80;
        const step = this.binary ? this.nextBinary() : this.nextText();
        let used: number;
        if (typeof step === 'number') used = step;
        else {
          this.socket.uncork();
          used = await step;
          this.socket.cork();
        }
        if (used === 0) break;
        this.buffer = this.buffer.subarray(used);
      }
    } catch (err) {
      this.ctx.onError(err);
      this.close();
    } finally {
      this.socket.uncork();
      this.running = false;
      if (!this.closed && this.socket.isPaused()) this.socket.resume();
    }
  }

  private reply(bytes: Buffer): void {
    if (!this.closed) this.socket.write(bytes);
  }

  // Text protocol -------------------------------------------------------------

  /** The next text command: its bytes consumed, at once when no database is needed, else once answered. */
  private nextText(): number | Promise<number> {
    if (this.ctx.saslRequired) {
      // As memcached with SASL on: the text protocol cannot authenticate, so it is not served.
      this.reply(textLine('CLIENT_ERROR authentication required: use the binary protocol with SASL'));
      this.socket.end();
      this.closed = true;
      return this.buffer.length;
    }
    const parsed = readTextCommand(this.buffer, 0, this.ctx.limits);
    if (parsed === null) return 0;
    if ('error' in parsed) {
      this.reply(textLine(parsed.error));
      if (parsed.discard) this.discard = parsed.discard;
      if (parsed.close) this.socket.end();
      if (parsed.close) this.closed = true;
      return parsed.length;
    }
    const { command } = parsed;
    if (command.kind === 'get' && command.touch === null) {
      const hits = this.fromTier(command.keys);
      if (hits) {
        this.reply(textItems(hits, command.withCas));
        return parsed.length;
      }
    }
    return this.answerText(parsed);
  }

  private async answerText(parsed: Extract<TextParse, { command: unknown }>): Promise<number> {
    const { command, noreply } = parsed;
    const out = await this.textReply(command).catch((err) => errorLine(err));
    if (command.kind === 'quit') {
      this.socket.end();
      this.closed = true;
    } else if (!noreply && out !== null) {
      this.reply(out);
    }
    return parsed.length;
  }

  private async textReply(command: MemcachedCommand): Promise<Buffer | null> {
    switch (command.kind) {
      case 'get': {
        if (command.keys.length === 1 && isSwitch(command.keys[0])) return textItems(this.switchContainer(command.keys[0]), false);
        const items = await this.getItems(command.keys, command.touch);
        return textItems(items, command.withCas);
      }
      case 'store': {
        const result = await this.store(command);
        return textLine(result.outcome.toUpperCase());
      }
      case 'delete':
        return textLine((await this.delete(command)).toUpperCase());
      case 'arith': {
        const result = await this.arith(command);
        if (result.outcome === 'ok') return textLine(String(result.value));
        if (result.outcome === 'not_found') return textLine('NOT_FOUND');
        return textLine('CLIENT_ERROR cannot increment or decrement non-numeric value');
      }
      case 'touch':
        return textLine((await this.touch(command)) ? 'TOUCHED' : 'NOT_FOUND');
      case 'flush':
        if (!this.ctx.allowFlush) return textLine('CLIENT_ERROR flush_all not allowed');
        await this.ctx.flushAll(command.delay);
        return textLine('OK');
      case 'version':
        return textLine(`VERSION ${this.ctx.version}`);
      case 'verbosity':
        return textLine('OK');
      case 'stats': {
        const stats = this.ctx.stats(command.group);
        return stats ? textStats(stats) : textLine('ERROR');
      }
      case 'quit':
        return null;
      default:
        return textLine('ERROR');
    }
  }

  // Binary protocol -----------------------------------------------------------

  private nextBinary(): number | Promise<number> {
    let frame;
    try {
      frame = readBinaryFrame(this.buffer, 0, this.ctx.limits.maxValueBytes + 1024);
    } catch (err) {
      // A bad header leaves nothing to resynchronise on: answer and close.
      this.reply(binaryError({ opcode: this.buffer[1] ?? 0, opaque: 0 }, statusOf(err), (err as Error).message));
      this.socket.end();
      this.closed = true;
      return this.buffer.length;
    }
    if (frame === null) return 0;
    let request: BinaryRequest;
    try {
      request = decodeBinaryRequest(frame);
    } catch (err) {
      this.reply(binaryError({ opcode: frame.opcode, opaque: frame.opaque }, statusOf(err), (err as Error).message));
      return frame.length;
    }
    const command = request.command;
    if (command.kind === 'get' && command.touch === null && (!this.ctx.saslRequired || this.authenticated)) {
      const hits = this.fromTier(command.keys);
      if (hits) {
        const item = hits[0];
        if (item) this.reply(binaryItem(request, item));
        else if (!suppressesResponse(request, BinaryStatus.KeyNotFound)) this.reply(binaryMiss(request, command.keys[0]));
        return frame.length;
      }
    }
    return this.answerBinary(request, frame.length);
  }

  private async answerBinary(request: BinaryRequest, length: number): Promise<number> {
    let out: Buffer | null;
    let status: number = BinaryStatus.NoError;
    try {
      out = await this.binaryReply(request);
      status = out === null ? BinaryStatus.NoError : out.readUInt16BE(6);
    } catch (err) {
      status = statusOf(err);
      out = binaryError(request, status, err instanceof MemcachedError ? err.message : 'Internal error');
      if (!(err instanceof MemcachedError)) this.ctx.onError(err);
    }
    if (out !== null && !suppressesResponse(request, status)) this.reply(out);
    if (request.command.kind === 'quit') {
      this.socket.end();
      this.closed = true;
    }
    return length;
  }

  private async binaryReply(request: BinaryRequest): Promise<Buffer | null> {
    const command = request.command;
    if (this.ctx.saslRequired && !this.authenticated && !['sasl_list', 'sasl_auth', 'version', 'noop', 'quit'].includes(command.kind)) {
      return binaryError(request, BinaryStatus.AuthError, 'Auth failure');
    }
    const ok = (cas = 0n) => binaryResponse(request.opcode, request.opaque, BinaryStatus.NoError, { cas });
    switch (command.kind) {
      case 'get': {
        const [item] = await this.getItems(command.keys, command.touch);
        return item ? binaryItem(request, item) : binaryMiss(request, command.keys[0]);
      }
      case 'store': {
        const outcome = await this.store(command);
        if (outcome.outcome === 'stored') return ok(outcome.cas);
        if (outcome.outcome === 'exists') return binaryError(request, BinaryStatus.KeyExists, 'Data exists for key.');
        if (outcome.outcome === 'not_found') return binaryError(request, BinaryStatus.KeyNotFound, 'Not found');
        // memcached's binary add of a live key says "exists", its replace of a missing key "not found".
        if (command.mode === StoreMode.Add) return binaryError(request, BinaryStatus.KeyExists, 'Data exists for key.');
        if (command.mode === StoreMode.Replace) return binaryError(request, BinaryStatus.KeyNotFound, 'Not found');
        return binaryError(request, BinaryStatus.ItemNotStored, 'Not stored.');
      }
      case 'delete': {
        const outcome = await this.delete(command);
        if (outcome === 'deleted') return ok();
        return outcome === 'exists' ? binaryError(request, BinaryStatus.KeyExists, 'Data exists for key.') : binaryError(request, BinaryStatus.KeyNotFound, 'Not found');
      }
      case 'arith': {
        const result = await this.arith(command);
        if (result.outcome === 'ok') return binaryArith(request, result.value, result.cas);
        if (result.outcome === 'not_found') return binaryError(request, BinaryStatus.KeyNotFound, 'Not found');
        return binaryError(request, BinaryStatus.NonNumeric, 'Non-numeric server-side value for incr or decr');
      }
      case 'touch':
        return (await this.touch(command)) ? ok() : binaryError(request, BinaryStatus.KeyNotFound, 'Not found');
      case 'flush':
        if (!this.ctx.allowFlush) return binaryError(request, BinaryStatus.NotSupported, 'flush_all not allowed');
        await this.ctx.flushAll(command.delay);
        return ok();
      case 'version':
        return binaryVersion(request, this.ctx.version);
      case 'stats':
        return binaryStats(request, this.ctx.stats(command.group) ?? []);
      case 'verbosity':
      case 'noop':
      case 'quit':
        return ok();
      case 'sasl_list':
        return binaryResponse(request.opcode, request.opaque, BinaryStatus.NoError, { value: Buffer.from('PLAIN') });
      case 'sasl_auth': {
        if (command.mechanism !== 'PLAIN') return binaryError(request, BinaryStatus.AuthError, 'Auth failure');
        // PLAIN: authzid NUL authcid NUL password.
        const parts = command.data.toString('utf8').split('\0');
        if (parts.length === 3 && this.ctx.authenticate(parts[1], parts[2])) {
          this.authenticated = true;
          return binaryResponse(request.opcode, request.opaque, BinaryStatus.NoError, { value: Buffer.from('Authenticated') });
        }
        return binaryError(request, BinaryStatus.AuthError, 'Auth failure');
      }
    }
  }

  // Shared --------------------------------------------------------------------

  /**
   * A get the cache tier answers whole: the hits (null for a known miss) in
   * the order of the keys, or null when any key needs the database (or a
   * key is not one the session can resolve: the slow path answers it).
   */
  private fromTier(keys: readonly Buffer[]): (Item | null)[] | null {
    if (keys.length === 1 && isSwitch(keys[0])) return null;
    const started = performance.now();
    const out: (Item | null)[] = [];
    let container = '';
    for (const key of keys) {
      let r: Resolved;
      try {
        r = this.resolve(key);
      } catch {
        return null;
      }
      const hit = this.ctx.store.peek(r.sql, r.key);
      if (hit === undefined) return null;
      out.push(hit && (hit.key.equals(key) ? hit : { ...hit, key }));
      container = r.sql.container.name;
    }
    this.ctx.observe('get', container, out.every((i) => i === null) ? 'miss' : out.some((i) => i === null) ? 'partial' : 'hit', (performance.now() - started) / 1000);
    return out;
  }

  private async getItems(keys: readonly Buffer[], touch: number | null): Promise<(Item | null)[]> {
    const resolved = keys.map((k) => this.resolve(k));
    if (touch !== null) {
      const out: (Item | null)[] = [];
      for (const r of resolved) out.push(await this.timed('gat', r, () => this.ctx.store.getAndTouch(r.sql, r.key, touch, this.writes)));
      return out;
    }
    // One read per container; the items go back in the order of the keys, with the keys as written.
    const out: (Item | null)[] = new Array(keys.length).fill(null);
    const byContainer = new Map<ContainerSql, number[]>();
    resolved.forEach((r, i) => {
      const list = byContainer.get(r.sql) ?? [];
      list.push(i);
      byContainer.set(r.sql, list);
    });
    for (const [sql, indexes] of byContainer) {
      const items = await this.timed('get', { sql, key: Buffer.alloc(0) }, () => this.ctx.store.get(sql, indexes.map((i) => resolved[i].key), this.writes));
      indexes.forEach((i, j) => (out[i] = items[j] && { ...items[j], key: keys[i] }));
    }
    return out;
  }

  private delete(command: Extract<MemcachedCommand, { kind: 'delete' }>): Promise<DeleteOutcome> {
    const r = this.resolve(command.key);
    return this.timed('delete', r, () => this.ctx.store.delete(r.sql, r.key, command.cas, this.writes));
  }

  private arith(command: Extract<MemcachedCommand, { kind: 'arith' }>): Promise<ArithOutcome> {
    const r = this.resolve(command.key);
    return this.timed(command.incr ? 'incr' : 'decr', r, () =>
      this.ctx.store.arith(r.sql, r.key, command.incr, command.delta, command.initial, command.exptime, this.writes),
    );
  }

  private touch(command: Extract<MemcachedCommand, { kind: 'touch' }>): Promise<boolean> {
    const r = this.resolve(command.key);
    return this.timed('touch', r, () => this.ctx.store.touch(r.sql, r.key, command.exptime, this.writes));
  }

  private store(command: Extract<MemcachedCommand, { kind: 'store' }>): Promise<{ outcome: 'stored' | 'not_stored' | 'exists' | 'not_found'; cas: bigint }> {
    const r = this.resolve(command.key);
    if (command.value.length > this.ctx.limits.maxValueBytes) {
      throw new MemcachedError('server', 'object too large for cache', BinaryStatus.ValueTooLarge);
    }
    const name = STORE_NAMES[command.mode];
    return this.timed(name, r, () => this.ctx.store.store(r.sql, command.mode, r.key, command.value, command.flags, command.exptime, command.cas, this.writes));
  }

  private async timed<T>(command: string, r: Resolved, run: () => Promise<T>): Promise<T> {
    const started = process.hrtime.bigint();
    try {
      const result = await run();
      this.ctx.observe(command, r.sql.container.name, outcomeOf(result), Number(process.hrtime.bigint() - started) / 1e9);
      return result;
    } catch (err) {
      this.ctx.observe(command, r.sql.container.name, 'error', Number(process.hrtime.bigint() - started) / 1e9);
      throw err;
    }
  }

  /** `@@name.key` names a container; any other key belongs to the connection's current one. */
  private resolve(key: Buffer): Resolved {
    if (key.length > 2 && key[0] === 0x40 && key[1] === 0x40) {
      const dot = key.indexOf(0x2e, 2);
      if (dot > 2) {
        const sql = this.ctx.container(key.toString('utf8', 2, dot));
        if (!sql) throw new MemcachedError('client', `unknown container "${key.toString('utf8', 2, dot)}"`);
        if (dot + 1 >= key.length) throw new MemcachedError('client', 'empty key after the container name');
        return { sql, key: key.subarray(dot + 1) };
      }
    }
    if (key.length === 0) throw new MemcachedError('client', 'empty key');
    return { sql: this.current ?? this.ctx.defaultContainer(), key };
  }

  /** `get @@name`: later keys without a prefix use that container; answers with its table, as the InnoDB plugin did. */
  private switchContainer(key: Buffer): Item[] {
    const name = key.toString('utf8', 2);
    const sql = this.ctx.container(name);
    if (!sql) return [];
    this.current = sql;
    return [{ key, flags: 0, cas: 0n, value: Buffer.from(`${sql.container.schema}/${sql.container.table}`) }];
  }
}

const STORE_NAMES: Record<StoreMode, string> = {
  [StoreMode.Set]: 'set',
  [StoreMode.Add]: 'add',
  [StoreMode.Replace]: 'replace',
  [StoreMode.Append]: 'append',
  [StoreMode.Prepend]: 'prepend',
  [StoreMode.Cas]: 'cas',
};

function isSwitch(key: Buffer): boolean {
  return key.length > 2 && key[0] === 0x40 && key[1] === 0x40 && key.indexOf(0x2e, 2) < 0;
}

function outcomeOf(result: unknown): string {
  if (typeof result === 'string') return result;
  if (typeof result === 'boolean') return result ? 'touched' : 'not_found';
  if (Array.isArray(result)) return result.every((i) => i === null) ? 'miss' : result.some((i) => i === null) ? 'partial' : 'hit';
  if (result === null) return 'miss';
  if (typeof result === 'object' && 'outcome' in (result as object)) return String((result as { outcome: unknown }).outcome);
  if (typeof result === 'object') return 'hit';
  return 'ok';
}

function statusOf(err: unknown): number {
  return err instanceof MemcachedError ? err.binaryStatus : BinaryStatus.InternalError;
}

function errorLine(err: unknown): Buffer {
  if (err instanceof MemcachedError) return textLine(`${err.side === 'client' ? 'CLIENT_ERROR' : 'SERVER_ERROR'} ${err.message}`);
  return textLine(`SERVER_ERROR ${(err as Error).message ?? 'internal error'}`);
}

