/**
 * Codes of the MySQL/MariaDB client/server protocol.
 * Sources: MySQL's include/mysql_com.h and MariaDB's protocol documentation.
 */

/** Capability flags, the lower 32 bits negotiated in the handshake. */
export const enum Capability {
  /** MySQL: "long password". MariaDB servers clear it to announce extended capabilities. */
  CLIENT_MYSQL = 1 << 0,
  FOUND_ROWS = 1 << 1,
  LONG_FLAG = 1 << 2,
  CONNECT_WITH_DB = 1 << 3,
  NO_SCHEMA = 1 << 4,
  COMPRESS = 1 << 5,
  ODBC = 1 << 6,
  LOCAL_FILES = 1 << 7,
  IGNORE_SPACE = 1 << 8,
  PROTOCOL_41 = 1 << 9,
  INTERACTIVE = 1 << 10,
  SSL = 1 << 11,
  IGNORE_SIGPIPE = 1 << 12,
  TRANSACTIONS = 1 << 13,
  RESERVED = 1 << 14,
  SECURE_CONNECTION = 1 << 15,
  MULTI_STATEMENTS = 1 << 16,
  MULTI_RESULTS = 1 << 17,
  PS_MULTI_RESULTS = 1 << 18,
  PLUGIN_AUTH = 1 << 19,
  CONNECT_ATTRS = 1 << 20,
  PLUGIN_AUTH_LENENC_CLIENT_DATA = 1 << 21,
  CAN_HANDLE_EXPIRED_PASSWORDS = 1 << 22,
  SESSION_TRACK = 1 << 23,
  DEPRECATE_EOF = 1 << 24,
  OPTIONAL_RESULTSET_METADATA = 1 << 25,
  ZSTD_COMPRESSION = 1 << 26,
  QUERY_ATTRIBUTES = 1 << 27,
  MULTI_FACTOR_AUTH = 1 << 28,
  CAPABILITY_EXTENSION = 1 << 29,
  SSL_VERIFY_SERVER_CERT = 1 << 30,
  REMEMBER_OPTIONS = 1 << 31,
}

/** MariaDB extended capabilities: bits 32..63, sent in the handshake's filler bytes. */
export const enum MariaDbCapability {
  PROGRESS = 1 << 0,
  COM_MULTI = 1 << 1,
  STMT_BULK_OPERATIONS = 1 << 2,
  EXTENDED_TYPE_INFO = 1 << 3,
  CACHE_METADATA = 1 << 4,
}

/** Server status flags carried by OK and EOF packets. */
export const enum ServerStatus {
  IN_TRANS = 0x0001,
  AUTOCOMMIT = 0x0002,
  MORE_RESULTS_EXISTS = 0x0008,
  NO_GOOD_INDEX_USED = 0x0010,
  NO_INDEX_USED = 0x0020,
  CURSOR_EXISTS = 0x0040,
  LAST_ROW_SENT = 0x0080,
  DB_DROPPED = 0x0100,
  NO_BACKSLASH_ESCAPES = 0x0200,
  METADATA_CHANGED = 0x0400,
  QUERY_WAS_SLOW = 0x0800,
  PS_OUT_PARAMS = 0x1000,
  IN_TRANS_READONLY = 0x2000,
  SESSION_STATE_CHANGED = 0x4000,
  /** MariaDB: the session's sql_mode has ANSI_QUOTES ("..." is an identifier). */
  ANSI_QUOTES = 0x8000,
}

/**
 * Command bytes: the first byte of every command-phase packet from a client.
 * A regular enum, not a const one, so that its reverse mapping gives each
 * command's name for metrics and logs.
 */
export enum Command {
  SLEEP = 0x00,
  QUIT = 0x01,
  INIT_DB = 0x02,
  QUERY = 0x03,
  FIELD_LIST = 0x04,
  CREATE_DB = 0x05,
  DROP_DB = 0x06,
  REFRESH = 0x07,
  SHUTDOWN = 0x08,
  STATISTICS = 0x09,
  PROCESS_INFO = 0x0a,
  CONNECT = 0x0b,
  PROCESS_KILL = 0x0c,
  DEBUG = 0x0d,
  PING = 0x0e,
  TIME = 0x0f,
  DELAYED_INSERT = 0x10,
  CHANGE_USER = 0x11,
  BINLOG_DUMP = 0x12,
  TABLE_DUMP = 0x13,
  CONNECT_OUT = 0x14,
  REGISTER_SLAVE = 0x15,
  STMT_PREPARE = 0x16,
  STMT_EXECUTE = 0x17,
  STMT_SEND_LONG_DATA = 0x18,
  STMT_CLOSE = 0x19,
  STMT_RESET = 0x1a,
  SET_OPTION = 0x1b,
  STMT_FETCH = 0x1c,
  DAEMON = 0x1d,
  BINLOG_DUMP_GTID = 0x1e,
  RESET_CONNECTION = 0x1f,
  /** MariaDB: bulk COM_STMT_EXECUTE. */
  STMT_BULK_EXECUTE = 0xfa,
  /** MariaDB: several commands in one packet. */
  MULTI = 0xfe,
}

/** Indexed by command byte: an array lookup on the per-command path, not a dictionary one. */
const COMMAND_NAMES: readonly string[] = Array.from({ length: 256 }, (_, code) =>
  Command[code] === undefined ? 'COM_UNKNOWN' : `COM_${Command[code]}`,
);

/** A bounded label value for metrics and logs: known names, else "COM_UNKNOWN". */
export function commandName(code: number): string {
  return COMMAND_NAMES[code & 0xff];
}

/** First byte of a response payload that marks its kind. */
export const enum PacketHeader {
  OK = 0x00,
  LOCAL_INFILE = 0xfb,
  EOF = 0xfe,
  ERR = 0xff,
}

/** Column types (enum_field_types). */
export const enum ColumnType {
  DECIMAL = 0x00,
  TINY = 0x01,
  SHORT = 0x02,
  LONG = 0x03,
  FLOAT = 0x04,
  DOUBLE = 0x05,
  NULL = 0x06,
  TIMESTAMP = 0x07,
  LONGLONG = 0x08,
  INT24 = 0x09,
  DATE = 0x0a,
  TIME = 0x0b,
  DATETIME = 0x0c,
  YEAR = 0x0d,
  NEWDATE = 0x0e,
  VARCHAR = 0x0f,
  BIT = 0x10,
  TIMESTAMP2 = 0x11,
  DATETIME2 = 0x12,
  TIME2 = 0x13,
  JSON = 0xf5,
  NEWDECIMAL = 0xf6,
  ENUM = 0xf7,
  SET = 0xf8,
  TINY_BLOB = 0xf9,
  MEDIUM_BLOB = 0xfa,
  LONG_BLOB = 0xfb,
  BLOB = 0xfc,
  VAR_STRING = 0xfd,
  STRING = 0xfe,
  GEOMETRY = 0xff,
}

/** COM_STMT_EXECUTE flags byte. */
export const enum CursorType {
  NO_CURSOR = 0,
  READ_ONLY = 1,
  FOR_UPDATE = 2,
  SCROLLABLE = 4,
}

/** Largest payload of one frame; a frame this long is continued by the next. */
export const MAX_FRAME_PAYLOAD = 0xffffff;

/** Server error codes the proxy emits itself, with the SQLSTATE clients expect. */
export const ErrorCode = {
  CON_COUNT: { code: 1040, sqlState: '08004' },
  HANDSHAKE: { code: 1043, sqlState: '08S01' },
  ACCESS_DENIED: { code: 1045, sqlState: '28000' },
  UNKNOWN_COM: { code: 1047, sqlState: '08S01' },
  SERVER_SHUTDOWN: { code: 1053, sqlState: '08S01' },
  NET_PACKET_TOO_LARGE: { code: 1153, sqlState: '08S01' },
  NET_READ_ERROR: { code: 1158, sqlState: '08S01' },
  NET_READ_INTERRUPTED: { code: 1159, sqlState: '08S01' },
  NO_SUCH_THREAD: { code: 1094, sqlState: 'HY000' },
  KILL_DENIED: { code: 1095, sqlState: 'HY000' },
  UNKNOWN_STMT_HANDLER: { code: 1243, sqlState: 'HY000' },
  NOT_SUPPORTED_YET: { code: 1235, sqlState: '42000' },
  NEW_ABORTING_CONNECTION: { code: 1184, sqlState: '08S01' },
  MALFORMED_PACKET: { code: 1835, sqlState: 'HY000' },
  UNKNOWN_COLLATION: { code: 1273, sqlState: 'HY000' },
  /** The server's "cannot execute in this mode": writes refused while two servers are writable. */
  OPTION_PREVENTS_STATEMENT: { code: 1290, sqlState: 'HY000' },
  /** Too many failed logins from this address. */
  HOST_IS_BLOCKED: { code: 1129, sqlState: 'HY000' },
  /** MySQL 8's answer for an account locked by FAILED_LOGIN_ATTEMPTS. */
  ACCOUNT_BLOCKED: { code: 3955, sqlState: 'HY000' },
  TOO_MANY_USER_CONNECTIONS: { code: 1203, sqlState: '42000' },
  /** require_secure_transport: a client without TLS. */
  SECURE_TRANSPORT_REQUIRED: { code: 3159, sqlState: '08004' },
  /** Retryable transaction loss (what drivers and ORMs already restart on): the primary moved mid-transaction. */
  LOCK_DEADLOCK: { code: 1213, sqlState: '40001' },
  /** Session state (temporary tables, locks) lost with the old primary. */
  CONNECTION_KILLED: { code: 1927, sqlState: '70100' },
  /**
   * Backend connectivity failures. Server-range codes: libmariadb (the `mariadb`
   * CLI, PHP's mysqlnd-less builds, Connector/C) rejects a client-range code
   * (2000-2999, e.g. 2003/2013) from a server as "2027 Received malformed packet".
   * A backend that cannot be reached: 9001, the code ProxySQL sends when it cannot
   * reach a hostgroup ("Max connect timeout reached while reaching hostgroup").
   */
  BACKEND_UNREACHABLE: { code: 9001, sqlState: 'HY000' },
  /** A backend connection lost: 1927 ER_CONNECTION_KILLED with 08S01, as MaxScale sends ("Connection killed by MaxScale: ..."). */
  BACKEND_LOST: { code: 1927, sqlState: '08S01' },
} as const;
export type ErrorSpec = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The authentication plugin the proxy speaks with clients and backends. */
export const NATIVE_PASSWORD_PLUGIN = 'mysql_native_password';
