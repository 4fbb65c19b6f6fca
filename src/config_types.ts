/** The validated, normalised configuration the rest of the proxy consumes. */
export interface BackendConfig {
  name: string;
  host: string;
  port: number;
  role: 'primary' | 'replica';
  weight: number;
}

export interface UserConfig {
  name: string;
  /**
   * SHA1(SHA1(password)) as 20 bytes: what mysql.user stores after the "*".
   * Computed from `password` when a plain password was configured; empty for
   * an account with an empty password.
   */
  passwordDoubleSha1: Buffer;
  /** True when the account has no password at all. */
  emptyPassword: boolean;
}

export interface WirecacheConfig {
  /** Absolute path the config was read from (for messages and reloads). */
  sourcePath: string;
  listen: { host: string; port: number };
  admin: { host: string; port: number };
  backends: BackendConfig[];
  users: UserConfig[];
  limits: {
    maxClientConnections: number;
    /** Largest client packet (joined payload) accepted, like max_allowed_packet. */
    maxPacketBytes: number;
  };
  timeouts: {
    /** Connecting and logging in to a backend. */
    backendConnectMs: number;
    /** A client must finish its login within this time. */
    clientHandshakeMs: number;
    /**
     * A client packet that has started arriving must be complete within this
     * time (MySQL's net_read_timeout), so a truncated packet cannot hold a session.
     */
    clientReadMs: number;
    /** Close client sessions idle for longer than this; 0 disables. */
    clientIdleSeconds: number;
    /** On SIGTERM, how long queries in flight may run before sessions are closed. */
    shutdownGraceMs: number;
  };
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' };
  /** Version string announced to clients when no backend has been reached yet. */
  serverVersion: string;
}
