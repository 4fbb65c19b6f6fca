/**
 * What one client command carries while it runs: made fresh when the
 * command arrives and dropped when it finishes, so nothing of one command
 * can leak into the next.
 */
import { performance } from 'node:perf_hooks';
import type { MissTicket } from '../cache/query_cache.js';
import type { Packet } from '../protocol/framing.js';
import type { ClassifiedStatement } from '../sql/classifier.js';
import type { Dispatch } from './backend_dispatch.js';
import type { TrackedChanges } from './tracked_changes.js';

/** A miss being recorded: the response bytes as they pass, until they exceed the plan's limit. */
export interface Recording {
  ticket: MissTicket;
  pieces: Buffer[] | null;
  bytes: number;
  limit: number;
}

export class CommandContext {
  /** performance.now() when the command arrived. */
  readonly start = performance.now();
  /** The command on its way to a backend, for retries and for what it changes in the session. */
  inflight: Dispatch | null = null;
  /** Response bytes that reached the client (a read may be retried elsewhere only while this is 0). */
  bytesForwarded = 0;
  /** A COM_QUERY's packet and payload, and its classification once made (the proxy classifies only when something needs it). */
  queryPacket: Packet | null = null;
  queryPayload: Buffer | null = null;
  statement: ClassifiedStatement | null = null;
  /** The COM_QUERY leaves nothing of the session on its connection (Multiplexer.leavesNoState), once asked. */
  leavesNoState: boolean | null = null;
  /** What the server reported the command changed in the session; null until it reports something. */
  tracked: TrackedChanges | null = null;

  // Statistics: the statement's digest row is updated when the command finishes.
  statStatement: ClassifiedStatement | null = null;
  statCache: 'hit' | 'miss' | null = null;
  statDestination: 'cache' | 'primary' | 'replica' = 'primary';
  /** Rows replayed from the cache (relayed rows are counted by the scanner). */
  statCacheRows = -1;
  statError = false;

  // The query cache.
  /** The statement the cache follows (its effects on the session, its invalidation), or null. */
  cacheStatement: ClassifiedStatement | null = null;
  /** A COM_STMT_EXECUTE: its statement text has placeholders. */
  binary = false;
  /** Status flags before the statement ran. */
  statusBefore = 0;
  recording: Recording | null = null;
  /** Response bytes held back until a write's invalidation has reached shared storage. */
  heldOutput: Buffer[] | null = null;
  heldBytes = 0;

  /** Schema named by a COM_INIT_DB, as latin1 text and as sent. */
  initDb = '';
  initDbBytes: Buffer | null = null;

  constructor(
    /** The COM_* code. */
    readonly code: number,
    /** Sequence id the next packet to the client must carry (for replies the proxy makes up mid-command). */
    public responseSeq: number,
  ) {}
}
