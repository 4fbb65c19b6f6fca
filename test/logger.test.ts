/** Log format: readable lines on a terminal, JSON otherwise, with the same fields. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, logFormat } from '../src/logger.js';

function capture(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => text };
}

describe('logger', () => {
  it('is readable on a terminal and JSON otherwise; WIRECACHE_LOG_FORMAT decides when set', () => {
    expect(logFormat(true, {})).toBe('pretty');
    expect(logFormat(false, {})).toBe('json');
    expect(logFormat(true, { WIRECACHE_LOG_FORMAT: 'json' })).toBe('json');
    expect(logFormat(false, { WIRECACHE_LOG_FORMAT: 'pretty' })).toBe('pretty');
    expect(logFormat(false, { WIRECACHE_LOG_FORMAT: 'bogus' })).toBe('json');
  });

  it('writes one JSON object per line, or one readable line with the same fields', async () => {
    const json = capture();
    createLogger('info', { destination: json.stream }).warn({ restart_needed: ['listen'], password: 'secret' }, 'config reloaded');
    const pretty = capture();
    createLogger('info', { destination: pretty.stream, pretty: true }).warn({ restart_needed: ['listen'], password: 'secret' }, 'config reloaded');
    await new Promise((r) => setTimeout(r, 20));
    expect(JSON.parse(json.text())).toMatchObject({ level: 'warn', msg: 'config reloaded', restart_needed: ['listen'], password: '[redacted]' });
    const line = pretty.text();
    expect(line.trim().split('\n')).toHaveLength(1);
    expect(line).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN \(wirecache\): config reloaded \{"restart_needed":\["listen"\],"password":"\[redacted\]"\}\n$/);
    expect(line).not.toMatch(/secret|"pid"|"hostname"/);
  });
});
