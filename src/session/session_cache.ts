/**
 * A session's side of the query cache: the session state results depend on,
 * the cache decision and lookup for each statement, replaying hits,
 * recording misses as their bytes pass, and invalidating what a write
 * changed before its reply is let through.
 */
import type { CacheRule } from '../config/rules.js';
import { DECISION_STATUS_FLAGS, decisionTag, quotingAmbiguous, type CachePlan, type CacheRequest } from '../cache/cache_policy.js';
import { SESSION_STATUS_MASK, type LookupResult, type QueryCache } from '../cache/query_cache.js';
import type { CacheEntry, RefusalReason } from '../cache/types.js';
import { Capability, Command, MariaDbCapability, ServerStatus } from '../protocol/constants.js';
import { replayInfo, replayResultWith } from '../protocol/result_replay.js';
import { changesSchema, qualifiedTableName, writesData, type ClassifiedStatement } from '../sql/classifier.js';
import { Phase, type ClientSession } from './client_session.js';
import { SessionState, STATE_SNAPSHOT_SQL, type Invalidation } from './session_state.js';
import { asLatin1 } from './wire.js';

/** A COM_QUERY or COM_STMT_EXECUTE as the cache sees it. */
export interface CacheableCommand {
  statement: ClassifiedStatement;
  /** COM_STMT_EXECUTE: binary rows, keyed on `params` too. */
  binary: boolean;
  params: string;
  /** A reason known up front not to cache (a cursor, long data). */
  refusal: RefusalReason | null;
}

/** Sends a statement on its way: `rule` is the rule it matched, `recording` whether its result will be stored. */
export type SendRouted = (rule: CacheRule | null, recording: boolean) => void;

/** Bytes of a write's reply held back for its invalidation before they are let through anyway. */
const HELD_OUTPUT_LIMIT = 64 * 1024;

export class SessionCache {
  /** Schema, session variables and uncommitted writes, tracked for the cache. */
  readonly state: SessionState;

  /**
   * The session's side of every decision, kept in one request (decide reads
   * it synchronously) with its tag: rebuilt only when the user, schema,
   * session state or status flags changed since the last statement.
   */
  private readonly request: CacheRequest & { tag: string };
  private tagUser = '';
  private tagSchema: string | null = null;
  private tagStateKey: string | null = null;
  private tagStatus = -1;
  private textTag = '';
  private binaryTag = '';

  constructor(
    private readonly s: ClientSession,
    private readonly cache: QueryCache,
    schema: string | null,
    characterSet: number,
  ) {
    this.state = new SessionState(asLatin1(schema), characterSet);
    this.request = {
      statement: null as unknown as ClassifiedStatement,
      binary: false,
      // Fixed for the session: the capabilities were agreed at login.
      metadataFlags: s.mariaDbCapabilities & MariaDbCapability.EXTENDED_TYPE_INFO,
      params: '',
      user: '',
      schema: null,
      stateKey: null,
      clientAddress: s.remoteAddress,
      status: 0,
      readUncommitted: false,
      autoIsNull: false,
      tag: '',
    };
  }

  /**
   * A COM_QUERY or COM_STMT_EXECUTE with the cache on: served from the cache,
   * or sent with `send` (and recorded when the plan says so).
   */
  run(command: CacheableCommand, send: SendRouted): void {
    const s = this.s;
    const cache = this.cache;
    const state = this.state;
    const statement = command.statement;
    const cmd = s.cmd;
    cmd.cacheStatement = statement;
    cmd.binary = command.binary;
    cmd.statusBefore = s.serverStatus;
    // A write, or anything that may end a transaction, must not be acknowledged before other proxies see its invalidation.
    const mayEndTransaction = (s.serverStatus & ServerStatus.IN_TRANS) !== 0 && statement.type !== 'select' && statement.type !== 'show';
    const holdReply = (cache.sharedInvalidation && (writesData(statement) || mayEndTransaction)) || this.awaitsBinlog(statement, mayEndTransaction);
    const go: SendRouted = holdReply
      ? (rule, recording) => {
          cmd.heldOutput = [];
          send(rule, recording);
        }
      : send;
    const primary = s.dispatcher.primaryLink;
    // Not inside a transaction: nothing is cached there, and a query of the proxy's own would change what the
    // server reports of the client's transaction (session_track_transaction_info).
    const inTransaction = (s.serverStatus & ServerStatus.IN_TRANS) !== 0;
    if (!state.known && !inTransaction && primary && !primary.conn.closed && statement.type === 'select' && !statement.multiStatement && cache.mayCache(statement)) {
      // What the session changed is unknown (after CALL, a reset, ...): read it back once, then decide.
      s.phase = Phase.Working;
      primary.conn.query(STATE_SNAPSHOT_SQL).then(
        (result) => {
          if (s.phase === Phase.Closed) return;
          if (result.rows[0]) state.setSnapshot(result.rows[0].map(asLatin1));
          else s.debug({ error: result.error?.message }, 'session state snapshot failed; not caching');
          this.lookup(command, go);
        },
        (err: Error) => s.failSession(err),
      );
      return;
    }
    this.lookup(command, go);
  }

  /**
   * A write whose tables the proxy cannot name (CALL, EXECUTE, a compound
   * statement), or the end of a transaction that made one: with a current
   * binlog reader its reply is held until the reader has passed the write's
   * GTID, which bumps exactly what it wrote, instead of invalidating everything.
   */
  private awaitsBinlog(statement: ClassifiedStatement, mayEndTransaction: boolean): boolean {
    const binlog = this.s.ctx.binlog;
    if (!binlog?.current) return false;
    return (writesData(statement) && statement.tablesWritten === null) || (mayEndTransaction && this.state.pendingUnknown);
  }

  private lookup(command: CacheableCommand, send: SendRouted): void {
    const s = this.s;
    const req = this.request;
    req.statement = command.statement;
    req.binary = command.binary;
    req.params = command.params;
    req.tag = this.tag(command.binary);
    const plan = this.cache.decide(req, command.refusal);
    if (!plan.cache) {
      send(plan.rule, false);
      return;
    }
    const result = this.cache.lookup(plan);
    if (result instanceof Promise) {
      s.phase = Phase.Working;
      result.then(
        (r) => this.afterLookup(plan, r, send),
        (err: Error) => s.failSession(err),
      );
    } else {
      this.afterLookup(plan, result, send);
    }
  }

  /** The session's tag for a text or a binary-protocol statement (decisionTag), rebuilt when its inputs changed. */
  private tag(binary: boolean): string {
    const s = this.s;
    const state = this.state;
    const req = this.request;
    const stateKey = state.stateKey;
    const user = s.user!.name;
    const status = s.serverStatus & DECISION_STATUS_FLAGS;
    if (stateKey !== this.tagStateKey || state.schema !== this.tagSchema || status !== this.tagStatus || user !== this.tagUser || this.textTag === '') {
      this.tagStateKey = stateKey;
      this.tagSchema = state.schema;
      this.tagStatus = status;
      this.tagUser = user;
      req.user = user;
      req.schema = state.schema;
      req.stateKey = stateKey;
      req.status = status;
      req.readUncommitted = state.readUncommitted;
      req.autoIsNull = state.autoIsNull;
      req.binary = false;
      this.textTag = decisionTag(req);
      req.binary = true;
      this.binaryTag = decisionTag(req);
      req.binary = binary;
    }
    return binary ? this.binaryTag : this.textTag;
  }

  private afterLookup(plan: CachePlan, result: LookupResult, send: SendRouted): void {
    const s = this.s;
    if (s.phase === Phase.Closed) {
      if (result.kind === 'miss') this.cache.abandon(result.ticket);
      return;
    }
    if (result.kind === 'hit') {
      s.cmd.statCache = 'hit';
      this.replay(result.entry);
      return;
    }
    if (result.kind === 'miss') {
      s.cmd.statCache = 'miss';
      s.cmd.recording = { ticket: result.ticket, pieces: [], bytes: 0, limit: plan.maxResultBytes };
    }
    send(plan.rule, result.kind === 'miss');
  }

  private readonly callsFunction = (text: string): boolean => this.s.ctx.catalog?.callsFunction(text) ?? false;

  /** Sends a cached result, reframed for this client and its transaction state. */
  private replay(entry: CacheEntry): void {
    const s = this.s;
    const cmd = s.cmd;
    entry.replay ??= replayInfo(entry.wire, entry.deprecateEof);
    cmd.statDestination = 'cache';
    cmd.statCacheRows = entry.replay.rows;
    const bytes = replayResultWith(entry.wire, entry.deprecateEof, entry.replay, {
      deprecateEof: (s.capabilities & Capability.DEPRECATE_EOF) !== 0,
      firstSeq: cmd.responseSeq,
      status: s.serverStatus & SESSION_STATUS_MASK,
      statusMask: SESSION_STATUS_MASK,
      warnings: 0,
    });
    cmd.cacheStatement = null;
    // A diagnostic read next (FOUND_ROWS(), SHOW WARNINGS) must describe this statement, which the server never ran.
    s.dispatcher.hitServed(!cmd.binary && cmd.queryPayload ? cmd.queryPayload.subarray(1) : null);
    s.writeReplay(bytes);
    s.finishCommand();
  }

  /**
   * A response is complete: what the command changed for the cache (the
   * session's schema, a dropped database), then the statement's own effects.
   * Returns a promise when the client's next command must wait for shared
   * invalidation or for the entry to be stored.
   */
  afterResponse(code: number, ok: boolean): Promise<void> | void {
    const state = this.state;
    const cmd = this.s.cmd;
    if (code === Command.INIT_DB && ok) state.initDb(cmd.initDb);
    if (code === Command.DROP_DB || code === Command.CREATE_DB) {
      // The old commands for DROP/CREATE DATABASE: everything in the schema may be gone, and the session's schema with it.
      state.markUnknown();
      const dropped = code === Command.DROP_DB ? this.cache.invalidate(null) : undefined;
      if (dropped) dropped.catch(() => undefined);
    }
    return this.afterStatement(!ok);
  }

  /**
   * The response to a command seen by the cache is complete: record it, track
   * what it changed in the session, invalidate what it wrote.
   */
  private afterStatement(failed: boolean): Promise<void> | void {
    const s = this.s;
    const cmd = s.cmd;
    const cache = this.cache;
    const statement = cmd.cacheStatement;
    const state = this.state;
    cmd.cacheStatement = null;
    const recording = cmd.recording;
    // With memcached, the session's next command waits until the entry is stored (bounded by the
    // memcached budget), so a client re-reading what it just read finds it.
    let storing: Promise<void> | undefined;
    if (recording) {
      cmd.recording = null;
      const wire = recording.pieces && !failed ? Buffer.concat(recording.pieces, recording.bytes) : null;
      if (failed) cache.refuse(recording.ticket, 'error');
      // A read that changed the session (a function that sets a variable) is not a pure read: not stored.
      else if (cmd.tracked?.stateChanged) cache.refuse(recording.ticket, 'session_state');
      else {
        const stored = cache.complete(recording.ticket, wire, (s.backend!.capabilities & Capability.DEPRECATE_EOF) !== 0);
        if (stored instanceof Promise) storing = stored.catch((err: Error) => s.log.warn({ err }, 'storing a cache entry failed'));
      }
    }
    if (!statement) return storing;
    const tracking = s.backend?.tracksState === true;
    if (cmd.binary && !tracking && (statement.type === 'set' || statement.type === 'use')) state.markUnknown();
    else state.statementDone(statement, failed, cmd.tracked, tracking, this.callsFunction);
    // Under ANSI_QUOTES or NO_BACKSLASH_ESCAPES, a write whose text the tokenizer may misread has unknown tables.
    const tables = quotingAmbiguous(statement, cmd.statusBefore) ? null : statement.tablesWritten;
    const written = writesData(statement) ? (tables?.map((t) => qualifiedTableName(t, state.schema)) ?? null) : undefined;
    // A view created or changed through this session: its base tables are known before the next command.
    const viewsRead = !failed && changesSchema(statement) && !statement.temporaryTable ? s.ctx.schemaChanged() : undefined;
    const invalidation = state.writeDone(written, statement, cmd.statusBefore, s.serverStatus, s.scanner.lastWarnings);
    const invalidating = this.invalidateOrAwait(invalidation);
    const pending = [storing, invalidating, viewsRead].filter((p): p is Promise<void> => p !== undefined);
    return pending.length === 0 ? undefined : pending.length === 1 ? pending[0] : Promise.all(pending).then(() => undefined);
  }

  /**
   * Everything would be invalidated for a write of unknown tables: when the
   * server reported the write's GTID and the binlog reader is current, wait
   * (up to binlog.max_delay_ms) for the reader to pass it instead; it bumps
   * what the write changed. On timeout, everything, as without a reader.
   */
  private invalidateOrAwait(invalidation: Invalidation): Promise<void> | void {
    const s = this.s;
    const binlog = s.ctx.binlog;
    const gtid = s.cmd.tracked?.variables.get('last_gtid');
    if (!invalidation || !('everything' in invalidation) || !binlog?.current || !gtid) return this.invalidate(invalidation);
    return binlog.waitFor(gtid, s.ctx.config().binlog.maxDelayMs).then((passed) => {
      s.ctx.observer.writeAwaitedInBinlog(passed ? 'passed' : 'timeout');
      if (!passed) return this.invalidate(invalidation);
    });
  }

  private invalidate(invalidation: Invalidation): Promise<void> | void {
    if (!invalidation) return;
    return this.cache.invalidate('everything' in invalidation ? null : invalidation.tables);
  }

  /** Response bytes pass on their way to the client: recorded for a miss, held for a write's invalidation. Returns whether the bytes were held. */
  passing(piece: Buffer): boolean {
    const cmd = this.s.cmd;
    const recording = cmd.recording;
    if (recording?.pieces) {
      if (recording.bytes + piece.length <= recording.limit) {
        recording.pieces.push(piece);
        recording.bytes += piece.length;
      } else {
        // Over the limit: the client still gets every byte; only the recording is dropped.
        recording.pieces = null;
      }
    }
    const held = cmd.heldOutput;
    if (!held) return false;
    held.push(piece);
    cmd.heldBytes += piece.length;
    // A write's reply is a few bytes; a big one (INSERT ... RETURNING) is let through rather than buffered.
    if (cmd.heldBytes > HELD_OUTPUT_LIMIT) this.releaseHeldOutput();
    return true;
  }

  /** Writes response bytes held back for a write's invalidation. */
  releaseHeldOutput(): void {
    const cmd = this.s.cmd;
    const held = cmd.heldOutput;
    cmd.heldOutput = null;
    cmd.heldBytes = 0;
    if (!held) return;
    for (const piece of held) this.s.writeToClient(piece);
  }

  /** The command ended without a response to record (a reply the proxy made itself). */
  abandonRecording(): void {
    const cmd = this.s.cmd;
    if (cmd.recording) this.cache.abandon(cmd.recording.ticket);
    cmd.recording = null;
    cmd.cacheStatement = null;
  }

  /** The session ends: a COMMIT in flight may have run, so its writes are flushed rather than risk stale entries. */
  closed(commandInFlight: boolean): void {
    this.abandonRecording();
    const pending = this.invalidate(this.state.abandonTransaction(commandInFlight));
    if (pending) pending.catch(() => undefined);
  }
}
