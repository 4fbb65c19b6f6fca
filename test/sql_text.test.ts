import { describe, expect, it } from 'vitest';
import { forEachToken, leadingKeywords, TokenKind } from '../src/sql/tokenizer.js';
import { batchContainsKill, mentionsKill, parseKillStatement, startsWithKill } from '../src/sql/kill_statement.js';

function tokens(sql: string): [TokenKind, string][] {
  const out: [TokenKind, string][] = [];
  forEachToken(sql, (t) => {
    out.push([t.kind, sql.slice(t.start, t.end)]);
  });
  return out;
}

describe('SQL tokenizer', () => {
  it('splits words, strings, quoted identifiers and symbols, skipping comments', () => {
    expect(tokens("SELECT `a;b`, 'x''y;z', \"q\\\"r\" /* c; */ FROM t -- tail;\n# more;\n;")).toEqual([
      [TokenKind.Word, 'SELECT'],
      [TokenKind.QuotedIdentifier, '`a;b`'],
      [TokenKind.Symbol, ','],
      [TokenKind.String, "'x''y;z'"],
      [TokenKind.Symbol, ','],
      [TokenKind.String, '"q\\"r"'],
      [TokenKind.Word, 'FROM'],
      [TokenKind.Word, 't'],
      [TokenKind.Semicolon, ';'],
    ]);
  });

  it('reads executable comments as code', () => {
    expect(tokens('/*!50000 KILL 5 */ ; /*M!100100 DO 1*/')).toEqual([
      [TokenKind.Word, 'KILL'],
      [TokenKind.Word, '5'],
      [TokenKind.Semicolon, ';'],
      [TokenKind.Word, 'DO'],
      [TokenKind.Word, '1'],
    ]);
  });

  it('does not take "--" without a following space as a comment', () => {
    expect(tokens('SELECT 1--1')).toEqual([
      [TokenKind.Word, 'SELECT'],
      [TokenKind.Word, '1'],
      [TokenKind.Symbol, '-'],
      [TokenKind.Symbol, '-'],
      [TokenKind.Word, '1'],
    ]);
  });

  it('survives unterminated strings and comments', () => {
    expect(tokens("SELECT 'abc")).toEqual([
      [TokenKind.Word, 'SELECT'],
      [TokenKind.String, "'abc"],
    ]);
    expect(tokens('SELECT /* open')).toEqual([[TokenKind.Word, 'SELECT']]);
  });

  it('finds the leading keyword of every statement of a batch', () => {
    expect(leadingKeywords("select 1; /* x */ kill 5; SELECT ';kill 6'; ")).toEqual(['SELECT', 'KILL', 'SELECT']);
  });
});

describe('KILL inside a batch', () => {
  it('is found only where a statement starts with it', () => {
    expect(batchContainsKill('DO 1; KILL 5')).toBe(true);
    expect(batchContainsKill('DO 1;/*!KILL 5*/')).toBe(true);
    expect(batchContainsKill("SELECT 'a; kill 5'")).toBe(false);
    expect(batchContainsKill('SELECT skill FROM t; SELECT killed FROM t')).toBe(false);
    expect(batchContainsKill('KILL 5')).toBe(false);
  });

  it('mentionsKill is a case-insensitive byte scan', () => {
    expect(mentionsKill(Buffer.from('\x03do 1; kIlL 5'), 1)).toBe(true);
    expect(mentionsKill(Buffer.from('\x03SELECT 1; SELECT 2'), 1)).toBe(false);
  });
});

describe('SQL text helpers', () => {
  it('reads KILL behind whitespace and comments, and inside executable comments', () => {
    expect(parseKillStatement('  /* a */ -- b\n# c\n KILL 5')).toEqual({ kind: 'kill', scope: 'connection', id: 5 });
    expect(parseKillStatement('/*!50000 KILL QUERY 6 */')).toEqual({ kind: 'kill', scope: 'query', id: 6 });
    expect(parseKillStatement('/* unterminated')).toBeNull();
    expect(parseKillStatement('KILL 5; SELECT 1')).toMatchObject({ kind: 'unsupported' });
    expect(parseKillStatement("KILL '5'")).toMatchObject({ kind: 'unsupported' });
  });

  it('recognises the KILL forms it maps and refuses the ones it cannot', () => {
    expect(parseKillStatement('KILL 5')).toEqual({ kind: 'kill', scope: 'connection', id: 5 });
    expect(parseKillStatement(' /*x*/ kill query 12;')).toEqual({ kind: 'kill', scope: 'query', id: 12 });
    expect(parseKillStatement('KILL HARD CONNECTION 7')).toEqual({ kind: 'kill', scope: 'connection', id: 7 });
    expect(parseKillStatement('KILL USER app')).toMatchObject({ kind: 'unsupported' });
    expect(parseKillStatement('KILL QUERY ID 3')).toMatchObject({ kind: 'unsupported' });
    expect(parseKillStatement('SELECT 1')).toBeNull();
    expect(parseKillStatement('KILLER()')).toBeNull();
  });
});

describe('startsWithKill (byte-level, before any decoding)', () => {
  const k = (s: string) => startsWithKill(Buffer.from(`\x03${s}`, 'latin1'), 1);
  it('finds KILL behind whitespace, comments and executable-comment markers, at any length', () => {
    expect(k('KILL 1')).toBe(true);
    expect(k(' \f\v\t\r\nkill query 2')).toBe(true);
    expect(k('/* trace */ -- x\n# y\nKiLl 3')).toBe(true);
    expect(k('/*!KILL 4*/')).toBe(true);
    expect(k('/*M!100000 KILL USER x*/')).toBe(true);
    expect(k(`KILL USER x${' '.repeat(5000)}`)).toBe(true);
  });
  it('does not flag other statements', () => {
    expect(k('SELECT 1')).toBe(false);
    expect(k('/* KILL 5 */ SELECT 1')).toBe(false);
    expect(k('KIL')).toBe(false);
    expect(k('/* unterminated KILL')).toBe(false);
  });
});
