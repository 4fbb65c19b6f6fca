/**
 * What the proxy core reports about its own activity. Sessions and the server
 * call these hooks; the Prometheus layer (metrics.ts) implements them. Keeping
 * the interface here means the protocol and session code never import
 * prom-client, and tests can count events without a registry.
 */
export type RefusalReason = 'max_connections' | 'shutting_down';

export interface ProxyObserver {
  clientConnected(): void;
  clientDisconnected(): void;
  clientRefused(reason: RefusalReason): void;
  /** A client login failed (bad password, unknown user, backend refused). */
  authFailed(reason: 'bad_credentials' | 'backend_refused' | 'backend_unavailable'): void;
  /** One client command finished; `command` is a COM_* name such as "COM_QUERY". */
  commandCompleted(command: string, durationSeconds: number): void;
  /** A connection attempt (or login) to a backend failed. */
  backendConnectError(backend: string): void;
}

/** Observer that ignores everything: used by tools and tests that need none. */
export const nullObserver: ProxyObserver = {
  clientConnected() {},
  clientDisconnected() {},
  clientRefused() {},
  authFailed() {},
  commandCompleted() {},
  backendConnectError() {},
};
