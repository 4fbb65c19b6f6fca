/**
 * Structured logging: one JSON object per line on stdout, e.g.
 *   {"level":"info","time":"2024-05-01T12:00:00.000Z","name":"wirecache","msg":"listening","port":6033}
 * When stdout is a terminal, the same lines are printed for a human instead
 * (pino-pretty: time, level, message, then the fields), unless
 * WIRECACHE_LOG_FORMAT=json; WIRECACHE_LOG_FORMAT=pretty forces the readable form.
 * Field names are snake_case, as in the admin API's JSON (restart_needed, in_rotation).
 */
import { hostname } from 'node:os';
import { pino } from 'pino';
import { build as prettyStream } from 'pino-pretty';

export type Logger = pino.Logger;
export type LogLevel = pino.LevelWithSilent;

export interface CreateLoggerOptions {
  /** Where to write the JSON lines; default stdout. Tests pass a stream to capture them. */
  destination?: pino.DestinationStream;
  /** Value of the `name` field; default "wirecache". */
  name?: string;
  /** Extra fields added to every line (besides pid and hostname). */
  base?: Record<string, unknown>;
  /** Human-readable lines instead of JSON; default: logFormat() (a terminal on stdout). */
  pretty?: boolean;
}

/**
 * JSON unless stdout is a terminal (a person reads it: readable lines);
 * WIRECACHE_LOG_FORMAT=json or pretty decides instead.
 */
export function logFormat(isTTY = process.stdout.isTTY === true, env: NodeJS.ProcessEnv = process.env): 'json' | 'pretty' {
  const forced = env.WIRECACHE_LOG_FORMAT?.toLowerCase();
  if (forced === 'json' || forced === 'pretty') return forced;
  return isTTY ? 'pretty' : 'json';
}

/** Fields that must never reach a log line, wherever they appear. */
const REDACT_PATHS = [
  'password',
  'password_hash',
  'passwordDoubleSha1',
  '*.password',
  '*.password_hash',
  '*.passwordDoubleSha1',
];

export function createLogger(level: LogLevel, opts: CreateLoggerOptions = {}): Logger {
  const options: pino.LoggerOptions = {
    name: opts.name ?? 'wirecache',
    level,
    base: { pid: process.pid, hostname: hostname(), ...opts.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Level names ("info") rather than pino's numbers: easier to read and grep.
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  const pretty = opts.pretty ?? (opts.destination === undefined && logFormat() === 'pretty');
  if (pretty) {
    // Synchronous, in this thread (no transport worker): lines appear in order with the process's other output.
    const stream = prettyStream({
      destination: opts.destination ?? 1,
      sync: true,
      colorize: opts.destination === undefined && process.stdout.isTTY === true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
      singleLine: true,
    });
    return pino(options, stream);
  }
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
