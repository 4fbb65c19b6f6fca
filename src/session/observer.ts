/**
 * What the proxy core reports about its own activity. Sessions and the server
 * call these hooks; the Prometheus layer (metrics.ts) implements them. Keeping
 * the interface here means the protocol and session code never import
 * prom-client, and tests can count events without a registry.
 */
export type RefusalReason = 'max_connections' | 'shutting_down' | 'login_throttled' | 'max_user_connections';

export interface ProxyObserver {
  clientConnected(): void;
  clientDisconnected(): void;
  clientRefused(reason: RefusalReason): void;
  /** A client login failed (bad password, unknown user, backend refused). */
  authFailed(reason: 'bad_credentials' | 'backend_refused' | 'backend_unavailable'): void;
  /** One client command finished; `command` is a COM_* name such as "COM_QUERY". */
  commandCompleted(command: string, durationSeconds: number): void;
  /** A client proved its password: native (mysql_native_password), sha2_fast, sha2_full_tls or sha2_full_rsa. */
  clientAuthenticated(method: 'native' | 'sha2_fast' | 'sha2_full_tls' | 'sha2_full_rsa'): void;
  /** A client address was blocked after too many failed logins. */
  loginBlocked(): void;
  /** An account was blocked after too many failed logins to it, from any address. */
  accountBlocked(): void;
  /** A connection attempt (or login) to a backend failed. */
  backendConnectError(backend: string): void;
  /** A statement was sent to `server` as a primary or replica, for `reason` (a RouteReason). */
  statementRouted(destination: 'primary' | 'replica', server: string, reason: string): void;
  /** A read whose replica failed before answering ran again elsewhere. */
  readRetried(server: string): void;
  /** A write was refused because two servers are writable at once. */
  writeRefused(reason: 'writable_conflict'): void;
  /** The primary moved while a session held a transaction or state on the old one; the client got an error. */
  primaryMoveInterrupted(what: 'transaction' | 'session_state'): void;
  /** A statement (COM_QUERY or COM_STMT_EXECUTE) finished, answered from `route`. */
  statementCompleted(route: 'cache' | 'primary' | 'replica', durationSeconds: number): void;
  /** A session-consistent read checked a replica: already covered, waited and caught up, or timed out (read went to the primary). */
  consistencyChecked(outcome: 'covered' | 'waited' | 'timeout'): void;
  /** A write whose tables the proxy could not name waited for the binlog reader to pass its GTID: passed, or timed out (everything was invalidated). */
  writeAwaitedInBinlog(outcome: 'passed' | 'timeout'): void;
  /**
   * Multiplexing, after a command: the session's idle backend connections went back to the pool
   * ('released'), or the session kept them for `reason` (transaction, temporary_table, user_variable, ...).
   */
  multiplexing(outcome: 'released' | 'kept', reason: string | null): void;
}
