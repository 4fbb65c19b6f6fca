/**
 * Structured logging: one JSON object per line on stdout, e.g.
 *   {"level":"info","time":"2024-05-01T12:00:00.000Z","name":"wirecache","msg":"listening","port":6033}
 */
import { hostname } from 'node:os';
import { pino } from 'pino';

export type Logger = pino.Logger;
export type LogLevel = pino.LevelWithSilent;

export interface CreateLoggerOptions {
  /** Where to write the JSON lines; default stdout. Tests pass a stream to capture them. */
  destination?: pino.DestinationStream;
  /** Value of the `name` field; default "wirecache". */
  name?: string;
  /** Extra fields added to every line (besides pid and hostname). */
  base?: Record<string, unknown>;
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
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
