import { describe, expect, it } from 'vitest';
import { forEachToken, TokenKind } from '../src/sql/tokenizer.js';
import { killsInText, mentionsKill, startsWithKill } from '../src/sql/kill_statement.js';
import { ignoredHintComments } from '../src/sql/key_text.js';

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
});

/** The KILLs of a text as (scope, id, the id's text) and the statement count; or what killsInText says otherwise. */
function kills(sql: string) {
  const r = killsInText(sql);
  if (r === null || 'unsupported' in r) return r;
  return { statements: r.statements, kills: r.kills.map((k) => [k.scope, k.id, sql.slice(k.start, k.end)]) };
}

describe('KILL statements of a text', () => {
  it('reads KILL behind whitespace and comments, and inside executable comments', () => {
    expect(kills('  /* a */ -- b\n# c\n KILL 5')).toEqual({ statements: 1, kills: [['connection', 5, '5']] });
    expect(kills('/*!50000 KILL QUERY 6 */')).toEqual({ statements: 1, kills: [['query', 6, '6']] });
    expect(kills('/* unterminated')).toBeNull();
    expect(kills("KILL '5'")).toMatchObject({ unsupported: expect.any(String) });
  });

  it('recognises the KILL forms it maps and refuses the ones it cannot', () => {
    expect(kills('KILL 5')).toEqual({ statements: 1, kills: [['connection', 5, '5']] });
    expect(kills(' /*x*/ kill query 12;')).toEqual({ statements: 1, kills: [['query', 12, '12']] });
    expect(kills('KILL HARD CONNECTION 7')).toEqual({ statements: 1, kills: [['connection', 7, '7']] });
    expect(kills('KILL USER app')).toMatchObject({ unsupported: expect.any(String) });
    expect(kills('KILL QUERY ID 3')).toMatchObject({ unsupported: expect.any(String) });
    expect(kills('SELECT 1')).toBeNull();
    expect(kills('KILLER()')).toBeNull();
  });

  it('finds every KILL of a multi-statement text, where each id stands, and only where a statement starts with it', () => {
    expect(kills('KILL 1000000007; SELECT SLEEP(0.05)')).toEqual({ statements: 2, kills: [['connection', 1000000007, '1000000007']] });
    expect(kills('DO 1; KILL 5')).toEqual({ statements: 2, kills: [['connection', 5, '5']] });
    expect(kills('DO 1;/*!KILL QUERY 5*/;select 2')).toEqual({ statements: 3, kills: [['query', 5, '5']] });
    expect(kills("SELECT 'a; kill 5'")).toBeNull();
    expect(kills('SELECT skill FROM t; SELECT killed FROM t')).toBeNull();
    expect(kills('SELECT 1; KILL USER app')).toMatchObject({ unsupported: expect.any(String) });
  });

  it('mentionsKill is a case-insensitive byte scan', () => {
    expect(mentionsKill(Buffer.from('\x03do 1; kIlL 5'), 1)).toBe(true);
    expect(mentionsKill(Buffer.from('\x03SELECT 1; SELECT 2'), 1)).toBe(false);
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

describe('ignoredHintComments (for /explain)', () => {
  const warnings = (sql: string) => ignoredHintComments(sql).map((w) => [w.comment, w.warning]);
  it('flags hint look-alikes the parser ignores, with why', () => {
    expect(warnings('/*qc=on,ttl=5*/ SELECT 1')).toEqual([['/*qc=on,ttl=5*/', expect.stringMatching(/one hint per comment/)]]);
    expect(warnings('/*qc=on qc_ttl=5*/ SELECT 1')).toEqual([['/*qc=on qc_ttl=5*/', expect.stringMatching(/one hint per comment/)]]);
    expect(warnings('/* qc_ttl=5s */ SELECT 1')).toEqual([['/* qc_ttl=5s */', expect.stringMatching(/digits only/)]]);
    expect(warnings('/*ttl=5*/ SELECT 1')).toEqual([['/*ttl=5*/', expect.stringMatching(/qc_ttl=N/)]]);
    expect(warnings('/*qc=maybe*/ SELECT 1')).toEqual([['/*qc=maybe*/', expect.stringMatching(/on or off/)]]);
    expect(warnings('SELECT 1 /*qc=on*/')).toEqual([['/*qc=on*/', expect.stringMatching(/before the first token/)]]);
    expect(warnings('-- qc=on\nSELECT 1')).toEqual([['-- qc=on', expect.stringMatching(/never from -- or #/)]]);
  });

  it('says nothing about real hints, other comments, strings, executable comments and optimizer hints', () => {
    for (const sql of ['/*qc=on*/ SELECT 1', '/* qc = off */ /*qc_ttl=30*/ SELECT 1', '/*route=replica*/ SELECT 1', '/* page 3 */ SELECT 1', "SELECT '/*qc=on,x*/', \"-- qc=on\"", '/*!50700 SELECT 1 */', '/*+ MAX_EXECUTION_TIME(1) */ SELECT 1']) {
      expect(ignoredHintComments(sql), sql).toEqual([]);
    }
  });
});
