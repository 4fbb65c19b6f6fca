import { describe, expect, it } from 'vitest';
import { classify, type TableRef } from '../src/sql/classifier.js';
import { digestOf } from '../src/sql/classifier.js';

/** Table refs as 'schema.table' / 'table' strings, for compact assertions. */
const names = (refs: TableRef[] | null): string[] | null =>
  refs === null ? null : refs.map((r) => (r.schema === null ? r.table : `${r.schema}.${r.table}`));
const read = (sql: string) => names(classify(sql).tablesRead);
const written = (sql: string) => names(classify(sql).tablesWritten);

describe('statement type and keyword', () => {
  it.each([
    ['SELECT 1', 'select', 'SELECT'],
    ['  select 1', 'select', 'SELECT'],
    ['(SELECT a FROM t1) UNION (SELECT b FROM t2)', 'select', 'SELECT'],
    ['((SELECT 1))', 'select', 'SELECT'],
    ['SELECT a FROM t1 UNION SELECT b FROM t2', 'select', 'SELECT'],
    ['VALUES (1, 2), (3, 4)', 'select', 'VALUES'],
    ['TABLE t', 'select', 'TABLE'],
    ['WITH c AS (SELECT 1) SELECT * FROM c', 'select', 'WITH'],
    ['WITH c AS (SELECT 1) (SELECT * FROM c)', 'select', 'WITH'],
    ['WITH c AS (SELECT id FROM t2) UPDATE t1 JOIN c ON t1.id = c.id SET t1.x = 1', 'update', 'WITH'],
    ['WITH c AS (SELECT id FROM t2) DELETE FROM t1 WHERE id IN (SELECT id FROM c)', 'delete', 'WITH'],
    ['SHOW TABLES', 'show', 'SHOW'],
    ['DESCRIBE t', 'show', 'DESCRIBE'],
    ['DESC t', 'show', 'DESC'],
    ['EXPLAIN SELECT * FROM t', 'show', 'EXPLAIN'],
    ["HELP 'contents'", 'show', 'HELP'],
    ['CHECKSUM TABLE t', 'show', 'CHECKSUM'],
    ['INSERT INTO t VALUES (1)', 'insert', 'INSERT'],
    ['UPDATE t SET a = 1', 'update', 'UPDATE'],
    ['DELETE FROM t', 'delete', 'DELETE'],
    ['REPLACE INTO t VALUES (1)', 'replace', 'REPLACE'],
    ["LOAD DATA INFILE 'f' INTO TABLE t", 'load', 'LOAD'],
    ["LOAD XML LOCAL INFILE 'f' INTO TABLE t", 'load', 'LOAD'],
    ['TRUNCATE TABLE t', 'truncate', 'TRUNCATE'],
    ['ALTER TABLE t ADD COLUMN c INT', 'alter', 'ALTER'],
    ['DROP TABLE t', 'drop', 'DROP'],
    ['RENAME TABLE a TO b', 'rename', 'RENAME'],
    ['CREATE TABLE t (id INT)', 'create', 'CREATE'],
    ['BEGIN', 'begin', 'BEGIN'],
    ['BEGIN WORK', 'begin', 'BEGIN'],
    ['START TRANSACTION', 'begin', 'START'],
    ['BEGIN NOT ATOMIC SELECT 1; END', 'other', 'BEGIN'],
    ['COMMIT', 'commit', 'COMMIT'],
    ['ROLLBACK', 'rollback', 'ROLLBACK'],
    ['ROLLBACK WORK', 'rollback', 'ROLLBACK'],
    ['ROLLBACK TO SAVEPOINT s1', 'savepoint', 'ROLLBACK'],
    ['ROLLBACK WORK TO s1', 'savepoint', 'ROLLBACK'],
    ['SAVEPOINT s1', 'savepoint', 'SAVEPOINT'],
    ['RELEASE SAVEPOINT s1', 'savepoint', 'RELEASE'],
    ["XA START 'x'", 'other', 'XA'],
    ['SET autocommit = 1', 'set', 'SET'],
    ['SET NAMES utf8mb4', 'set', 'SET'],
    ['SET TRANSACTION ISOLATION LEVEL READ COMMITTED', 'set', 'SET'],
    ["SET PASSWORD = 'x'", 'other', 'SET'],
    ['USE db', 'use', 'USE'],
    ['DO SLEEP(1)', 'do', 'DO'],
    ['CALL p(1)', 'call', 'CALL'],
    ['LOCK TABLES t READ', 'lock', 'LOCK'],
    ['UNLOCK TABLES', 'unlock', 'UNLOCK'],
    ['GRANT SELECT ON db.* TO u', 'other', 'GRANT'],
    ['FLUSH TABLES', 'other', 'FLUSH'],
    ["PREPARE s FROM 'SELECT 1'", 'other', 'PREPARE'],
    ['EXECUTE s', 'other', 'EXECUTE'],
    ['HANDLER t READ FIRST', 'other', 'HANDLER'],
    ['ANALYZE TABLE t', 'other', 'ANALYZE'],
    ['OPTIMIZE TABLE t', 'other', 'OPTIMIZE'],
    ['', 'other', ''],
    ['   /* only a comment */ ', 'other', ''],
    ["'a string'", 'other', ''],
  ] as const)('%s -> %s', (sql, type, keyword) => {
    const c = classify(sql);
    expect(c.type).toBe(type);
    expect(c.keyword).toBe(keyword);
  });

  it('reads the type through leading comments, executable comments and hints', () => {
    expect(classify('/* a */ -- b\n# c\n SELECT 1').type).toBe('select');
    expect(classify('/*!40101 SET NAMES utf8 */').type).toBe('set');
    expect(classify('/*qc=on*/ DELETE FROM t').type).toBe('delete');
  });

  it('SET STATEMENT ... FOR takes the inner statement type, with no lasting assignments', () => {
    const sel = classify('SET STATEMENT max_statement_time=10 FOR SELECT * FROM t');
    expect(sel).toMatchObject({ type: 'select', keyword: 'SET', sessionAssignments: null, setsGlobal: false, lockingRead: false });
    expect(sel.keyText).toBe('SET STATEMENT max_statement_time=10 FOR SELECT * FROM t');
    expect(names(sel.tablesRead)).toEqual(['t']);
    const upd = classify('SET STATEMENT sql_mode=\'\' FOR UPDATE t SET a = 1');
    expect(upd.type).toBe('update');
    expect(names(upd.tablesWritten)).toEqual(['t']);
    // The FOR that ends the assignments is not a locking clause, a real FOR UPDATE still is.
    expect(classify('SET STATEMENT a=1 FOR SELECT * FROM t FOR UPDATE').lockingRead).toBe(true);
  });

  it('tells EXPLAIN ANALYZE of a write (which runs it) from plain EXPLAIN', () => {
    expect(classify('EXPLAIN UPDATE t SET a = 1').tablesWritten).toEqual([]);
    expect(classify('EXPLAIN ANALYZE UPDATE t SET a = 1').tablesWritten).toBeNull();
    expect(classify('EXPLAIN ANALYZE SELECT * FROM t').tablesWritten).toEqual([]);
    expect(classify('ANALYZE UPDATE t SET a = 1').tablesWritten).toBeNull();
    expect(classify('ANALYZE TABLE t').tablesWritten).toEqual([]);
  });

  it('reads START TRANSACTION READ ONLY', () => {
    expect(classify('START TRANSACTION READ ONLY').readOnlyTransaction).toBe(true);
    expect(classify('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY').readOnlyTransaction).toBe(true);
    expect(classify('START TRANSACTION READ WRITE').readOnlyTransaction).toBe(false);
    expect(classify('BEGIN').readOnlyTransaction).toBe(false);
  });
});

describe('multi-statement texts', () => {
  it('is multi only when something follows a semicolon', () => {
    expect(classify('SELECT 1;').multiStatement).toBe(false);
    expect(classify('SELECT 1 ; -- done\n /* x */ ').multiStatement).toBe(false);
    expect(classify('SELECT 1; SELECT 2').multiStatement).toBe(true);
    expect(classify("SELECT ';' FROM t").multiStatement).toBe(false);
    expect(classify('SELECT `a;b` FROM t').multiStatement).toBe(false);
  });

  it('invalidates everything when a statement of the batch writes', () => {
    const c = classify('SELECT a FROM t1; DELETE FROM t2 WHERE id = 1');
    expect(c.type).toBe('select');
    expect(c.multiStatement).toBe(true);
    expect(c.tablesWritten).toBeNull();
    expect(names(c.tablesRead)).toEqual(['t1', 't2']);
    expect(classify('SELECT 1; SELECT * FROM t').tablesWritten).toEqual([]);
    expect(classify('SELECT 1; CALL p()').tablesWritten).toBeNull();
  });

  it('gathers the session effects of every statement', () => {
    const c = classify('SET sql_mode = \'\'; USE shop; SELECT NOW(); SET GLOBAL x = 1');
    expect(c.sessionAssignments).toEqual([{ name: 'sql_mode', value: "''" }]);
    expect(c.useSchema).toBe('shop');
    expect(c.setsGlobal).toBe(true);
    expect(c.nonDeterministic).toBe('NOW');
    expect(c.tablesWritten).toEqual([]);
  });
});

describe('cache hints', () => {
  it('reads hints from leading comments only', () => {
    expect(classify('/*qc=on*/ SELECT 1').hints).toEqual({ cache: 'on', ttlSeconds: null, route: null });
    expect(classify('/*qc=off*/SELECT 1').hints.cache).toBe('off');
    expect(classify('SELECT /*qc=on*/ 1').hints.cache).toBeNull();
    expect(classify('SELECT 1 /*qc=on*/').hints.cache).toBeNull();
    expect(classify('SELECT 1').hints).toEqual({ cache: null, ttlSeconds: null, route: null });
  });

  it('takes several hint comments in a row, with spaces and any case, among other comments', () => {
    expect(classify('/*qc=on*//*qc_ttl=5*/ SELECT 1').hints).toEqual({ cache: 'on', ttlSeconds: 5, route: null });
    expect(classify('/* trace-id=abc */ /*qc=on*/ SELECT 1').hints.cache).toBe('on');
    expect(classify('/* QC = ON */ /* Qc_Ttl=60 */ -- note\n /*route=primary*/ SELECT 1').hints).toEqual({
      cache: 'on',
      ttlSeconds: 60,
      route: 'primary',
    });
    expect(classify('/*route=replica-2*/ SELECT 1').hints.route).toBe('replica-2');
    expect(classify('/*qc_ttl=0*/ SELECT 1').hints.ttlSeconds).toBe(0);
  });

  it('ignores invalid ttls and lets qc=off win over qc=on', () => {
    expect(classify('/*qc_ttl=-1*/ SELECT 1').hints.ttlSeconds).toBeNull();
    expect(classify('/*qc_ttl=1.5*/ SELECT 1').hints.ttlSeconds).toBeNull();
    expect(classify('/*qc_ttl=abc*/ SELECT 1').hints.ttlSeconds).toBeNull();
    expect(classify('/*qc_ttl=30*/ /*qc_ttl=x*/ SELECT 1').hints.ttlSeconds).toBe(30);
    expect(classify('/*qc=maybe*/ SELECT 1').hints.cache).toBeNull();
    expect(classify('/*qc=off*/ /*qc=on*/ SELECT 1').hints.cache).toBe('off');
  });

  it('does not take an executable comment or an optimizer hint for a cache hint', () => {
    expect(classify('/*!qc=on*/ SELECT 1').hints.cache).toBeNull();
    expect(classify('/*+ qc=on */ SELECT 1').hints.cache).toBeNull();
  });
});

describe('keyText', () => {
  it('folds whitespace and comments between tokens to one space, keeps touching tokens joined, and drops a trailing semicolon', () => {
    expect(classify('SELECT  *\n FROM t /* trace */').keyText).toBe('SELECT * FROM t');
    expect(classify('SELECT * FROM t').keyText).toBe('SELECT * FROM t');
    expect(classify('SELECT /* x */ a FROM t;').keyText).toBe('SELECT a FROM t');
    expect(classify('SELECT a -- c\nFROM t # d\n WHERE b=1').keyText).toBe('SELECT a FROM t WHERE b=1');
    expect(classify('SELECT a/**/FROM t').keyText).toBe('SELECT a FROM t');
    expect(classify('/*qc=on*/ /* trace */ SELECT 1 ;  ').keyText).toBe('SELECT 1');
  });

  it('keeps literals, identifiers and case exactly', () => {
    expect(classify("SELECT 'A  b' FROM `T  x` WHERE c = 'q'").keyText).toBe("SELECT 'A  b' FROM `T  x` WHERE c = 'q'");
    expect(classify('SELECT 1').keyText).not.toBe(classify('select 1').keyText);
    expect(classify("SELECT x'41'").keyText).not.toBe(classify("SELECT x '41'").keyText);
    // How much white space separates two tokens never matters to the server, so it does not split the cache...
    expect(classify('SELECT v\n  FROM t\n WHERE id = 1').keyText).toBe('SELECT v FROM t WHERE id = 1');
    // ...but whether any does may: `1e+1` is a number, `1e + 1` a column plus one; `x'41'` a literal, `x '41'` an alias.
    expect(classify('SELECT 1e+1').keyText).not.toBe(classify('SELECT 1e + 1').keyText);
    expect(classify('SELECT a-1').keyText).toBe('SELECT a-1');
    expect(classify('SELECT a - 1').keyText).toBe('SELECT a - 1');
    expect(classify("SELECT x'41'").keyText).toBe("SELECT x'41'");
  });

  it('keeps a text with a backslash or a double quote exactly: the session sql_mode decides where its strings end', () => {
    // With NO_BACKSLASH_ESCAPES 'a\' ends at the second quote; without it, further on. Folding the
    // spaces of what may or may not be inside a string could join two statements the server tells apart.
    const a = "SELECT 'a\\',  'b  c'";
    const b = "SELECT 'a\\',  'b c'";
    expect(classify(a).keyText).toBe(a);
    expect(classify(a).keyText).not.toBe(classify(b).keyText);
    // ANSI_QUOTES makes "x" an identifier; otherwise it is a string.
    expect(classify('SELECT "x  y" FROM t /* c */').keyText).toBe('SELECT "x  y" FROM t /* c */');
    expect(classify('SELECT  "x"').keyText).not.toBe(classify('SELECT "x"').keyText);
  });

  it('keeps executable comment contents as code, markers only where the server may skip them', () => {
    expect(classify('SELECT 1 /*! + 1 */').keyText).toBe('SELECT 1 + 1');
    expect(classify('/*! SELECT 1 */').keyText).toBe('SELECT 1');
    // A versioned comment runs only on servers at least that new: keep it apart from plain code.
    expect(classify('SELECT 1 /*!99999 + 1 */').keyText).toBe('SELECT 1 /*!99999 + 1 */');
    expect(classify('SELECT 1 /*!99999 + 1 */').keyText).not.toBe(classify('SELECT 1 + 1').keyText);
    expect(classify('SELECT 1/*!99999+1*/;').keyText).toBe('SELECT 1 /*!99999 +1 */');
    expect(classify('/*M!100100 SELECT 1 */').keyText).toBe('/*M!100100 SELECT 1 */');
  });

  it('keeps optimizer hints, which can change what a statement does', () => {
    expect(classify("SELECT /*+ SET_VAR(sql_mode='') */ a FROM t").keyText).toBe("SELECT /*+ SET_VAR(sql_mode='') */ a FROM t");
  });

  it('keeps a multi-statement text whole', () => {
    expect(classify('SELECT 1;\n SELECT 2;').keyText).toBe('SELECT 1; SELECT 2');
  });
});

describe('digestText and digestOf', () => {
  it('replaces literals by ? and upper-cases words', () => {
    expect(classify("select a from t where b = 'x' and c = 5").digestText).toBe('SELECT A FROM t WHERE B = ? AND C = ?');
    expect(classify('SELECT c FROM sbtest1 WHERE id=5012').digestText).toBe('SELECT C FROM sbtest1 WHERE ID = ?');
    expect(classify('SELECT NULL, TRUE, FALSE').digestText).toBe('SELECT NULL, TRUE, FALSE');
  });

  it('reads every literal form as one ?', () => {
    expect(digestOf("SELECT 1.5, .5, 1e5, 1e-5, 2.5E+3, 0x1F, 0b101, x'41', X'41', b'01', N'abc', _utf8mb4'a', _latin1 'b', \"dq\"")).toBe(
      'SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?',
    );
    // x '41' (column x, alias '41') is not a hex literal; 2fa_codes is an identifier.
    expect(digestOf("SELECT x '41' FROM 2fa_codes")).toBe('SELECT X ? FROM 2fa_codes');
  });

  it('folds a sign into the literal only where it is unary', () => {
    expect(digestOf('SELECT -3, a - 3, a-3, 5 - 3, 1 - -2, (-1), a = - 4, b > +5')).toBe(
      'SELECT ?, A - ?, A - ?, ? - ?, ? - ?, (?, ...), A = ?, B > ?',
    );
    expect(digestOf('SELECT * FROM t WHERE id = -5')).toBe(digestOf('SELECT * FROM t WHERE id = 5'));
    expect(digestOf('SELECT a FROM t WHERE b BETWEEN -1 AND -2')).toBe('SELECT A FROM t WHERE B BETWEEN ? AND ?');
    expect(digestOf('SELECT a - b')).toBe('SELECT A - B');
  });

  it('folds IN lists and VALUES rows', () => {
    expect(digestOf('SELECT * FROM t WHERE id IN (1, 2, 3)')).toBe('SELECT * FROM t WHERE ID IN (?, ...)');
    expect(digestOf("SELECT * FROM t WHERE id IN ('a')")).toBe('SELECT * FROM t WHERE ID IN (?, ...)');
    expect(digestOf('SELECT * FROM t WHERE id IN (a, 1)')).toBe('SELECT * FROM t WHERE ID IN (A, ?)');
    expect(digestOf("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')")).toBe('INSERT INTO t(A, B) VALUES (?, ...)');
    expect(digestOf('INSERT INTO t VALUES (1, NOW()), (2, NOW())')).toBe('INSERT INTO t VALUES (?, NOW())');
    expect(digestOf('INSERT INTO t VALUES (1, NOW()), (2, 3)')).toBe('INSERT INTO t VALUES (?, NOW()), (?, ...)');
    expect(digestOf('SELECT * FROM t WHERE id IN (SELECT id FROM u)')).toBe('SELECT * FROM t WHERE ID IN (SELECT ID FROM u)');
  });

  it('defines its spacing: none before , ) . and after ( . @, none between a function name and (', () => {
    expect(digestOf('SELECT COUNT( * ), t . a, @x, @@session . sql_mode FROM t WHERE a<=1 AND b<>2 AND c->>\'$.x\'=3')).toBe(
      'SELECT COUNT(*), T.A, @X, @@SESSION.SQL_MODE FROM t WHERE A <= ? AND B <> ? AND C ->> ? = ?',
    );
    expect(digestOf('SELECT * FROM t WHERE EXISTS(SELECT 1) AND a IN(1)')).toBe('SELECT * FROM t WHERE EXISTS (SELECT ?) AND A IN (?, ...)');
  });

  it('drops comments and hints, keeps executable comment contents, drops a trailing semicolon', () => {
    expect(digestOf('/*qc=on*/ SELECT /* c */ a -- x\n FROM t /*!50000 WHERE b = 1 */;')).toBe('SELECT A FROM t WHERE B = ?');
  });

  it('ignores the case and quoting of columns, keeps the case of table and schema names (the server tells Users from users)', () => {
    expect(digestOf('SELECT `a` FROM `Shop`.`Users`')).toBe('SELECT A FROM Shop.Users');
    expect(digestOf('select A from Shop.Users')).toBe('SELECT A FROM Shop.Users');
    expect(digestOf('select a from shop.users')).toBe('SELECT A FROM shop.users');
    expect(digestOf('UPDATE Users SET a = 1')).not.toBe(digestOf('UPDATE users SET a = 1'));
    expect(digestOf('SELECT `my col` FROM t')).toBe('SELECT `MY COL` FROM t');
    expect(digestOf('SELECT a FROM `my table`')).toBe('SELECT A FROM `my table`');
  });

  it('gives a multi-line ORM statement with other literals the digest of its one-line form', () => {
    const orm = `SELECT \`users\`.\`id\`, \`users\`.\`name\`
      FROM \`users\`
      WHERE \`users\`.\`status\` = 'active'
        AND \`users\`.\`id\` IN (1, 2, 3)
        AND \`users\`.\`score\` > -1.5
      ORDER BY \`users\`.\`id\` DESC
      LIMIT 10`;
    const oneLine = "select users.id, users.name from users where users.status='banned' and users.id in (42) and users.score>7 order by users.id desc limit 20;";
    expect(classify(orm).digestText).toBe(classify(oneLine).digestText);
    expect(classify(orm).digestText).toBe(
      'SELECT USERS.ID, USERS.NAME FROM users WHERE USERS.STATUS = ? AND USERS.ID IN (?, ...) AND USERS.SCORE > ? ORDER BY USERS.ID DESC LIMIT ?',
    );
    expect(classify(orm).keyText).not.toBe(classify(oneLine).keyText);
  });

  it('matches a rule written with ? placeholders', () => {
    expect(digestOf('SELECT c FROM sbtest1 WHERE id=?')).toBe(classify('SELECT c FROM sbtest1 WHERE id=77').digestText);
    expect(digestOf('SELECT c FROM sbtest1 WHERE id BETWEEN ? AND ?')).toBe(
      classify('SELECT c FROM sbtest1 WHERE id BETWEEN 10 AND 109').digestText,
    );
    expect(digestOf('select * from orders where customer_id = ? and state in (?)')).toBe(
      classify("SELECT * FROM orders WHERE customer_id = 5 AND state IN ('new', 'paid')").digestText,
    );
    expect(digestOf('SELECT * FROM t WHERE id IN (?, ...)')).toBe(classify('SELECT * FROM t WHERE id IN (1,2)').digestText);
    expect(digestOf('SELECT * FROM t WHERE a = ?')).not.toBe(classify('SELECT * FROM t WHERE b = 1').digestText);
    expect(digestOf('SELECT * FROM t WHERE a = ?')).not.toBe(classify('SELECT * FROM t WHERE a = b').digestText);
  });
});

describe('tablesRead', () => {
  it('finds FROM lists, joins of every kind and schema-qualified names', () => {
    expect(read('SELECT 1')).toEqual([]);
    expect(read('SELECT * FROM a, b.c')).toEqual(['a', 'b.c']);
    expect(read('SELECT * FROM `Shop`.`Order Items` oi')).toEqual(['shop.order items']);
    expect(read('SELECT * FROM t1 AS a NATURAL JOIN t2 CROSS JOIN t3 LEFT OUTER JOIN db.t4 b USING (id) RIGHT JOIN t5 ON 1 STRAIGHT_JOIN t6 INNER JOIN t7 ON 1')).toEqual(
      ['t1', 't2', 't3', 'db.t4', 't5', 't6', 't7'],
    );
    expect(read('select * from t1 left join t2 on t1.id = t2.id, t3 where x = 1')).toEqual(['t1', 't2', 't3']);
    expect(read('SELECT * FROM ((a JOIN b ON a.x = b.x), c)')).toEqual(['a', 'b', 'c']);
    expect(read('SELECT STRAIGHT_JOIN a FROM t1 STRAIGHT_JOIN t2')).toEqual(['t1', 't2']);
    expect(read('SELECT * FROM t1 UNION TABLE t2')).toEqual(['t1', 't2']);
    expect(read('TABLE t')).toEqual(['t']);
  });

  it('reads subqueries and derived tables', () => {
    expect(read('SELECT * FROM (SELECT id FROM t1) AS d JOIN t2 USING(id)')).toEqual(['t1', 't2']);
    expect(read('SELECT * FROM (SELECT id FROM t1) d, t2')).toEqual(['t1', 't2']);
    expect(read('SELECT (SELECT MAX(x) FROM t2) AS m FROM t1 WHERE EXISTS (SELECT 1 FROM t3 WHERE t3.a = t1.a) AND b IN (SELECT b FROM t4)')).toEqual(
      ['t2', 't1', 't3', 't4'],
    );
    expect(read('SELECT * FROM t1, LATERAL (SELECT * FROM t2 WHERE t2.a = t1.a) AS l')).toEqual(['t1', 't2']);
  });

  it('reports CTE names as tables (documented choice) along with what their bodies read', () => {
    expect(read('WITH cte AS (SELECT id FROM base) SELECT * FROM cte JOIN other ON cte.id = other.id')).toEqual(['base', 'cte', 'other']);
    expect(read('WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r')).toEqual(['r']);
  });

  it('skips aliases, index hints and partitions', () => {
    expect(read('SELECT * FROM t AS a FORCE INDEX (PRIMARY) JOIN u b USE INDEX FOR JOIN (i1) ON a.x = b.x IGNORE KEY FOR ORDER BY (i2)')).toEqual(
      ['t', 'u'],
    );
    expect(read('SELECT * FROM t PARTITION (p0, p1) AS x, u `y` WHERE 1')).toEqual(['t', 'u']);
    expect(read('SELECT * FROM t a LIMIT 1')).toEqual(['t']);
  });

  it('does not take DUAL, table functions or FROM inside function arguments for tables', () => {
    expect(read('SELECT 1 FROM dual')).toEqual([]);
    expect(read("SELECT * FROM t, JSON_TABLE(t.j, '$[*]' COLUMNS (x INT PATH '$')) AS jt, u")).toEqual(['t', 'u']);
    expect(read("SELECT EXTRACT(YEAR FROM d), TRIM(LEADING 'x' FROM name), SUBSTRING(s FROM 2) FROM users")).toEqual(['users']);
  });

  it('is not fooled by strings, comments or backticked keywords', () => {
    expect(read("SELECT 'FROM x' FROM t WHERE a = 'JOIN y'")).toEqual(['t']);
    expect(read('SELECT a /* FROM x */ FROM t -- JOIN y\n')).toEqual(['t']);
    expect(read('SELECT `from`, `select` FROM `from` JOIN `select` ON 1')).toEqual(['from', 'select']);
  });

  it('reads the sources of writes', () => {
    expect(read('INSERT INTO t2 (a) SELECT a FROM t1 JOIN t3 USING (id) WHERE b > 1')).toEqual(['t1', 't3']);
    expect(read('UPDATE t SET a = (SELECT MAX(b) FROM u)')).toEqual(['t', 'u']);
    expect(read('CREATE TABLE t2 AS SELECT * FROM t1')).toEqual(['t1']);
    expect(read('CREATE TABLE t2 LIKE t1')).toEqual(['t1']);
    expect(read('INSERT INTO t VALUES (1)')).toEqual([]);
  });
});

describe('tablesWritten', () => {
  it('handles the sysbench statements', () => {
    const point = classify('SELECT c FROM sbtest1 WHERE id=?');
    expect(point).toMatchObject({ type: 'select', tablesWritten: [], lockingRead: false, nonDeterministic: null });
    expect(names(point.tablesRead)).toEqual(['sbtest1']);
    expect(read('SELECT c FROM sbtest1 WHERE id BETWEEN ? AND ?')).toEqual(['sbtest1']);
    expect(classify('SELECT DISTINCT c FROM sbtest3 WHERE id BETWEEN 1 AND 100 ORDER BY c')).toMatchObject({
      type: 'select',
      tablesRead: [{ schema: null, table: 'sbtest3' }],
      tablesWritten: [],
      digestText: 'SELECT DISTINCT C FROM sbtest3 WHERE ID BETWEEN ? AND ? ORDER BY C',
    });
    expect(written('UPDATE sbtest1 SET k=k+1 WHERE id=5')).toEqual(['sbtest1']);
    expect(written('DELETE FROM sbtest1 WHERE id=5')).toEqual(['sbtest1']);
    const ins = classify("INSERT INTO sbtest1 (id, k, c, pad) VALUES (5, 1, 'x', 'y')");
    expect(ins.type).toBe('insert');
    expect(names(ins.tablesWritten)).toEqual(['sbtest1']);
    expect(ins.tablesRead).toEqual([]);
  });

  it('names the targets of INSERT and REPLACE', () => {
    expect(written('INSERT LOW_PRIORITY IGNORE INTO db.t SELECT * FROM u')).toEqual(['db.t']);
    expect(written('INSERT t VALUES (1)')).toEqual(['t']);
    expect(written('REPLACE t SET a = 1')).toEqual(['t']);
    expect(written('INSERT INTO `My`.`T` PARTITION (p1) (a) VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a)')).toEqual(['my.t']);
  });

  it('names every table of a multi-table UPDATE', () => {
    expect(written('UPDATE t1 a JOIN t2 b ON a.id = b.id SET a.x = b.y')).toEqual(['t1', 't2']);
    expect(written('UPDATE LOW_PRIORITY t1, db.t2 SET t1.a = 1, t2.b = 2')).toEqual(['t1', 'db.t2']);
    expect(written('UPDATE t SET a = (SELECT MAX(b) FROM u)')).toEqual(['t']);
  });

  it('resolves the targets of multi-table DELETE through aliases', () => {
    expect(written('DELETE t1, t2 FROM t1 INNER JOIN t2 INNER JOIN t3 WHERE t1.id = t2.id AND t2.id = t3.id')).toEqual(['t1', 't2']);
    expect(written('DELETE a FROM t1 AS a JOIN t2 b ON a.id = b.id')).toEqual(['t1']);
    expect(written('DELETE a.*, b FROM db.t1 a JOIN t2 b ON a.id = b.id')).toEqual(['db.t1', 't2']);
    expect(written('DELETE FROM t1, t2 USING t1 INNER JOIN t2 INNER JOIN t3 WHERE t1.id = t2.id')).toEqual(['t1', 't2']);
    expect(written('DELETE FROM a1 USING t1 AS a1 JOIN t2 ON 1')).toEqual(['t1']);
    expect(written('DELETE FROM t WHERE id IN (SELECT id FROM u)')).toEqual(['t']);
  });

  it('names the tables of DDL and LOAD', () => {
    expect(written('TRUNCATE t')).toEqual(['t']);
    expect(written('TRUNCATE TABLE db.t')).toEqual(['db.t']);
    expect(written('ALTER TABLE t ADD COLUMN c INT')).toEqual(['t']);
    expect(written('ALTER TABLE t RENAME TO u')).toEqual(['t', 'u']);
    expect(written('ALTER TABLE t RENAME COLUMN a TO b')).toEqual(['t']);
    expect(written('ALTER TABLE t EXCHANGE PARTITION p WITH TABLE u')).toEqual(['t', 'u']);
    expect(written('DROP TABLE IF EXISTS a, db.b')).toEqual(['a', 'db.b']);
    expect(written('RENAME TABLE a TO b, db.c TO d')).toEqual(['a', 'b', 'db.c', 'd']);
    expect(written("LOAD DATA LOCAL INFILE 'x.csv' REPLACE INTO TABLE t FIELDS TERMINATED BY ','")).toEqual(['t']);
    expect(written('CREATE TABLE IF NOT EXISTS t (id INT)')).toEqual(['t']);
    expect(written('CREATE OR REPLACE TABLE t AS SELECT * FROM u')).toEqual(['t']);
    expect(written('CREATE UNIQUE INDEX i ON db.t (a)')).toEqual(['db.t']);
    expect(written('DROP INDEX i ON t')).toEqual(['t']);
  });

  it('marks temporary tables', () => {
    expect(classify('CREATE TEMPORARY TABLE tmp (id INT)').temporaryTable).toBe(true);
    expect(classify('DROP TEMPORARY TABLE tmp').temporaryTable).toBe(true);
    expect(classify('CREATE TABLE t (id INT)').temporaryTable).toBe(false);
  });

  it('is null where the tables cannot be told', () => {
    for (const sql of [
      'CALL p(1)',
      'DROP DATABASE d',
      'DROP SCHEMA d',
      'CREATE DATABASE d',
      'CREATE VIEW v AS SELECT 1',
      'ALTER VIEW v AS SELECT 2',
      'DROP VIEW v',
      'CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1',
      'DROP TRIGGER tr',
      'CREATE PROCEDURE p() SELECT 1',
      'DROP FUNCTION f',
      'CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t',
      'CREATE SEQUENCE s',
      'GRANT SELECT ON db.* TO u',
      'REVOKE SELECT ON db.* FROM u',
      "PREPARE s FROM 'DELETE FROM t'",
      'EXECUTE s',
      'DEALLOCATE PREPARE s',
      "XA COMMIT 'x'",
      'OPTIMIZE TABLE t',
      "SET PASSWORD = 'x'",
      'BEGIN NOT ATOMIC DELETE FROM t; END',
      'UPDATE t',
      'INSERT INTO',
    ]) {
      expect(classify(sql).tablesWritten, sql).toBeNull();
    }
  });

  it('is empty for statements that change no table data', () => {
    for (const sql of [
      'SELECT * FROM t',
      'SHOW TABLES',
      'SET autocommit = 0',
      'USE db',
      'BEGIN',
      'COMMIT',
      'ROLLBACK',
      'SAVEPOINT a',
      'DO 1',
      'LOCK TABLES t WRITE',
      'UNLOCK TABLES',
      'HELP \'x\'',
      'KILL 5',
      '',
    ]) {
      expect(classify(sql).tablesWritten, sql).toEqual([]);
    }
  });
});

describe('locking reads and SELECT ... INTO', () => {
  it('finds FOR UPDATE, FOR SHARE and LOCK IN SHARE MODE anywhere', () => {
    expect(classify('SELECT * FROM t WHERE id = 1 FOR UPDATE').lockingRead).toBe(true);
    expect(classify('SELECT * FROM t FOR SHARE SKIP LOCKED').lockingRead).toBe(true);
    expect(classify('SELECT * FROM t LOCK IN SHARE MODE').lockingRead).toBe(true);
    expect(classify('SELECT * FROM t WHERE a IN (SELECT a FROM u FOR UPDATE)').lockingRead).toBe(true);
    expect(classify('SELECT * FROM t').lockingRead).toBe(false);
    expect(classify("SELECT 'FOR UPDATE' FROM t").lockingRead).toBe(false);
    expect(classify('SELECT NEXT VALUE FOR s').lockingRead).toBe(false);
  });

  it('finds SELECT ... INTO', () => {
    expect(classify('SELECT a INTO @x FROM t').selectInto).toBe(true);
    expect(classify('SELECT a FROM t INTO @x, @y').selectInto).toBe(true);
    expect(classify("SELECT a FROM t INTO OUTFILE '/tmp/x'").selectInto).toBe(true);
    expect(classify("SELECT a FROM t INTO DUMPFILE '/tmp/x'").selectInto).toBe(true);
    expect(classify('SELECT a INTO local_var FROM t').selectInto).toBe(true);
    expect(classify('INSERT INTO t SELECT a FROM u').selectInto).toBe(false);
    expect(classify('SELECT a FROM t').selectInto).toBe(false);
    expect(classify("SELECT 'INTO @x'").selectInto).toBe(false);
  });
});

describe('nonDeterministic', () => {
  it('finds calls of the listed functions', () => {
    expect(classify('SELECT NOW()').nonDeterministic).toBe('NOW');
    expect(classify('SELECT * FROM t WHERE a > now ( ) - INTERVAL 1 DAY').nonDeterministic).toBe('NOW');
    expect(classify('SELECT * FROM t ORDER BY rand()').nonDeterministic).toBe('RAND');
    expect(classify('SELECT UUID(), NOW()').nonDeterministic).toBe('UUID');
    expect(classify('SELECT USER()').nonDeterministic).toBe('USER');
    expect(classify('SELECT DATABASE()').nonDeterministic).toBe('DATABASE');
    expect(classify('SELECT SCHEMA()').nonDeterministic).toBe('SCHEMA');
    expect(classify('SELECT LAST_INSERT_ID()').nonDeterministic).toBe('LAST_INSERT_ID');
    expect(classify("SELECT GET_LOCK('x', 1)").nonDeterministic).toBe('GET_LOCK');
    expect(classify('SELECT NEXTVAL(s)').nonDeterministic).toBe('NEXTVAL');
    expect(classify('SELECT NEXT VALUE FOR s').nonDeterministic).toBe('NEXT VALUE FOR');
    expect(classify('SELECT PREVIOUS VALUE FOR s').nonDeterministic).toBe('PREVIOUS VALUE FOR');
    expect(classify('SELECT /*!RAND()*/').nonDeterministic).toBe('RAND');
  });

  it('finds the keyword forms used bare or called', () => {
    expect(classify('SELECT CURRENT_TIMESTAMP').nonDeterministic).toBe('CURRENT_TIMESTAMP');
    expect(classify('SELECT CURRENT_DATE()').nonDeterministic).toBe('CURRENT_DATE');
    expect(classify('SELECT * FROM t WHERE d < CURRENT_TIME').nonDeterministic).toBe('CURRENT_TIME');
    expect(classify('SELECT current_user').nonDeterministic).toBe('CURRENT_USER');
    expect(classify('SELECT LOCALTIMESTAMP').nonDeterministic).toBe('LOCALTIMESTAMP');
    expect(classify('SELECT UTC_DATE').nonDeterministic).toBe('UTC_DATE');
    // Sets the session's FOUND_ROWS(), which an answer from the cache would not.
    expect(classify('SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 10').nonDeterministic).toBe('SQL_CALC_FOUND_ROWS');
  });

  it('finds user and system variables', () => {
    expect(classify('SELECT @x').nonDeterministic).toBe('@x');
    expect(classify("SELECT @'my var'").nonDeterministic).toBe("@'my var'");
    expect(classify('SELECT * FROM t WHERE a = @`v`').nonDeterministic).toBe('@`v`');
    expect(classify('SELECT @@sql_mode').nonDeterministic).toBe('@@sql_mode');
    expect(classify('SELECT @@session.time_zone').nonDeterministic).toBe('@@session.time_zone');
    expect(classify('SELECT @@GLOBAL.max_connections').nonDeterministic).toBe('@@GLOBAL.max_connections');
  });

  it('is not fooled by strings, quoted identifiers, column names or qualified names', () => {
    expect(classify("SELECT 'now()', \"rand()\" FROM t").nonDeterministic).toBeNull();
    expect(classify('SELECT `user`, `now`() FROM t').nonDeterministic).toBeNull();
    expect(classify('SELECT user, host FROM mysql.user WHERE user = 1').nonDeterministic).toBeNull();
    expect(classify('SELECT t.now, t.rand FROM t').nonDeterministic).toBeNull();
    expect(classify('SELECT mydb.rand(1)').nonDeterministic).toBeNull();
    expect(classify('INSERT INTO user (a) VALUES (1)').nonDeterministic).toBeNull();
    expect(classify('SELECT c FROM sbtest1 WHERE id = 5').nonDeterministic).toBeNull();
  });
});

describe('needsPrimary', () => {
  const np = (sql: string) => classify(sql).needsPrimary;

  it.each([
    ["SELECT GET_LOCK('x', 10)", 'GET_LOCK'],
    ["SELECT RELEASE_LOCK('x')", 'RELEASE_LOCK'],
    ['SELECT RELEASE_ALL_LOCKS()', 'RELEASE_ALL_LOCKS'],
    ["SELECT IS_FREE_LOCK('x')", 'IS_FREE_LOCK'],
    ["SELECT IS_USED_LOCK('x')", 'IS_USED_LOCK'],
    ['SELECT LAST_INSERT_ID()', 'LAST_INSERT_ID'],
    ['SELECT FOUND_ROWS()', 'FOUND_ROWS'],
    ['SELECT ROW_COUNT()', 'ROW_COUNT'],
    ['SELECT NEXTVAL(s)', 'NEXTVAL'],
    ['SELECT LASTVAL(s)', 'LASTVAL'],
    ['SELECT SETVAL(s, 100)', 'SETVAL'],
    ['SELECT NEXT VALUE FOR s', 'NEXT VALUE FOR'],
    ['SELECT PREVIOUS VALUE FOR s', 'PREVIOUS VALUE FOR'],
    ['SELECT CONNECTION_ID()', 'CONNECTION_ID'],
    ["SELECT MASTER_POS_WAIT('bin.000001', 4)", 'MASTER_POS_WAIT'],
    ["SELECT MASTER_GTID_WAIT('0-1-100', 1)", 'MASTER_GTID_WAIT'],
    ["SELECT SOURCE_POS_WAIT('bin.000001', 4)", 'SOURCE_POS_WAIT'],
    ["SELECT WAIT_FOR_EXECUTED_GTID_SET('uuid:1-5', 1)", 'WAIT_FOR_EXECUTED_GTID_SET'],
    ["SELECT LOAD_FILE('/etc/hosts')", 'LOAD_FILE'],
  ])('%s -> %s', (sql, want) => {
    expect(np(sql)).toBe(want);
  });

  it('matches function names case-insensitively, with space before the parenthesis, anywhere in the statement', () => {
    expect(np('select last_insert_id()')).toBe('LAST_INSERT_ID');
    expect(np('SELECT * FROM t WHERE id = Last_Insert_Id ( )')).toBe('LAST_INSERT_ID');
    expect(np('SELECT a FROM t WHERE id IN (SELECT id FROM u WHERE v = found_rows())')).toBe('FOUND_ROWS');
    expect(np('SELECT next value for s')).toBe('NEXT VALUE FOR');
    expect(np('SELECT /*!GET_LOCK(1, 0)*/')).toBe('GET_LOCK');
    expect(np('INSERT INTO t VALUES (LAST_INSERT_ID())')).toBe('LAST_INSERT_ID');
  });

  it('ignores the names when not called: columns, qualified names, quoted identifiers, strings, comments', () => {
    expect(np('SELECT last_insert_id FROM t')).toBeNull();
    expect(np('SELECT t.get_lock FROM t')).toBeNull();
    expect(np('SELECT t.get_lock(1) FROM t')).toBeNull();
    expect(np('SELECT `get_lock`(1)')).toBeNull();
    expect(np("SELECT 'GET_LOCK(1)'")).toBeNull();
    expect(np('SELECT "LAST_INSERT_ID()" FROM t')).toBeNull();
    expect(np('SELECT 1 /* GET_LOCK(1) */ FROM t')).toBeNull();
    expect(np('SELECT 1 -- LAST_INSERT_ID()\nFROM t')).toBeNull();
    expect(np('SELECT next, value FROM t')).toBeNull();
    expect(np('INSERT INTO found_rows (a) VALUES (1)')).toBeNull();
  });

  it('does not count functions that are only non-deterministic', () => {
    const c = classify('SELECT NOW(), RAND(), UUID(), SLEEP(1), DATABASE()');
    expect(c.nonDeterministic).toBe('NOW');
    expect(c.needsPrimary).toBeNull();
    expect(np('SELECT SQL_CALC_FOUND_ROWS * FROM t')).toBeNull();
    expect(np('SELECT c FROM sbtest1 WHERE id = 5')).toBeNull();
  });

  it('finds user variables read or assigned, as written', () => {
    expect(np('SELECT @a')).toBe('@a');
    expect(np('SELECT @a := 1')).toBe('@a');
    expect(np('SELECT * FROM t WHERE id = @Id')).toBe('@Id');
    expect(np("SELECT @'my var'")).toBe("@'my var'");
    expect(np('SELECT @`v`')).toBe('@`v`');
    expect(np('SELECT @a.b + 1')).toBe('@a.b');
    const set = classify('SET @a = 1');
    expect(set.type).toBe('set');
    expect(set.needsPrimary).toBe('@a');
  });

  it('keeps the first reason in text order', () => {
    expect(np('SELECT @a, LAST_INSERT_ID()')).toBe('@a');
    expect(np('SELECT LAST_INSERT_ID(), @a')).toBe('LAST_INSERT_ID');
    expect(np('SELECT NOW(), FOUND_ROWS()')).toBe('FOUND_ROWS');
    expect(np('SELECT @@sql_mode, @@identity')).toBe('@@identity');
  });

  it('is not fooled by strings, placeholders or account names', () => {
    expect(np("SELECT '@x' FROM t")).toBeNull();
    expect(np("SELECT * FROM t WHERE email = 'a@b.c'")).toBeNull();
    expect(np('SELECT * FROM t WHERE id = ?')).toBeNull();
    expect(np("SHOW GRANTS FOR 'bob'@'localhost'")).toBeNull();
    expect(np('SHOW GRANTS FOR `bob`@`%`')).toBeNull();
  });

  it('counts only the listed system variables', () => {
    expect(np('SELECT @@sql_mode')).toBeNull();
    expect(np('SELECT @@session.time_zone, @@GLOBAL.max_connections')).toBeNull();
    expect(classify('SELECT @@sql_mode').nonDeterministic).toBe('@@sql_mode');
    expect(np('SELECT @@last_insert_id')).toBe('@@last_insert_id');
    expect(np('SELECT @@IDENTITY')).toBe('@@IDENTITY');
    expect(np('SELECT @@last_gtid')).toBe('@@last_gtid');
    expect(np('SELECT @@insert_id')).toBe('@@insert_id');
    expect(np('SELECT @@session.last_insert_id')).toBe('@@session.last_insert_id');
  });

  it("gives 'INTO' for SELECT ... INTO, unless something came before it", () => {
    // INTO is met before the variable it names, so it wins.
    expect(np('SELECT 1 INTO @x')).toBe('INTO');
    expect(np('SELECT a FROM t INTO @x, @y')).toBe('INTO');
    expect(np("SELECT a FROM t INTO OUTFILE '/tmp/x'")).toBe('INTO');
    expect(np('SELECT a INTO local_var FROM t')).toBe('INTO');
    // Text order: a variable read before INTO is reported first.
    expect(np('SELECT @a INTO @b')).toBe('@a');
    expect(np('INSERT INTO t SELECT a FROM u')).toBeNull();
  });

  it('gathers over all statements of a multi-statement text', () => {
    const c = classify('SELECT a FROM t; SELECT NOW(); SELECT LAST_INSERT_ID(); SELECT @x');
    expect(c.multiStatement).toBe(true);
    expect(c.needsPrimary).toBe('LAST_INSERT_ID');
    expect(c.nonDeterministic).toBe('NOW');
    expect(classify('SET @a = 1; SELECT @@last_insert_id').needsPrimary).toBe('@a');
    expect(classify('SELECT 1; SELECT 2').needsPrimary).toBeNull();
  });
});

describe('namedLock', () => {
  const nl = (sql: string) => classify(sql).namedLock;

  it('reports GET_LOCK, RELEASE_LOCK and RELEASE_ALL_LOCKS calls', () => {
    expect(nl("SELECT GET_LOCK('x', 10)")).toBe('acquire');
    expect(nl("select get_lock('x', 10)")).toBe('acquire');
    expect(nl("SELECT RELEASE_LOCK('x')")).toBe('release');
    expect(nl('SELECT RELEASE_ALL_LOCKS()')).toBe('release_all');
    expect(nl("DO GET_LOCK('x', 0)")).toBe('acquire');
  });

  it('is null for other lock functions and for names that are not calls', () => {
    expect(nl("SELECT IS_FREE_LOCK('x'), IS_USED_LOCK('x')")).toBeNull();
    expect(nl('SELECT get_lock, release_lock FROM t')).toBeNull();
    expect(nl('SELECT t.get_lock(1) FROM t')).toBeNull();
    expect(nl("SELECT 'GET_LOCK(1)'")).toBeNull();
    expect(nl('SELECT 1')).toBeNull();
  });

  it('prefers release_all over acquire over release, whatever the order', () => {
    expect(nl("SELECT RELEASE_LOCK('a'), GET_LOCK('b', 1)")).toBe('acquire');
    expect(nl("SELECT GET_LOCK('b', 1), RELEASE_LOCK('a')")).toBe('acquire');
    expect(nl("SELECT RELEASE_ALL_LOCKS(), GET_LOCK('b', 1)")).toBe('release_all');
    expect(nl("SELECT GET_LOCK('b', 1), RELEASE_ALL_LOCKS()")).toBe('release_all');
    expect(nl("SELECT RELEASE_LOCK('a'), RELEASE_ALL_LOCKS()")).toBe('release_all');
  });

  it('gathers over all statements, even after needsPrimary and nonDeterministic are set', () => {
    const c = classify("SELECT NOW(); SELECT RELEASE_LOCK('a'); SELECT GET_LOCK('b', 1)");
    expect(c.namedLock).toBe('acquire');
    expect(c.needsPrimary).toBe('RELEASE_LOCK');
    expect(c.nonDeterministic).toBe('NOW');
    expect(nl("SELECT GET_LOCK('a', 1); SELECT RELEASE_ALL_LOCKS()")).toBe('release_all');
  });
});

describe('SET', () => {
  it('collects session assignments with their value text', () => {
    expect(classify('SET autocommit=0').sessionAssignments).toEqual([{ name: 'autocommit', value: '0' }]);
    const c = classify(
      "SET SESSION sql_mode = 'STRICT_ALL_TABLES', @@time_zone := '+00:00', LOCAL wait_timeout = DEFAULT, @@session.Max_Join_Size=1000, @@local.x = CONCAT(@@sql_mode,   ',X')",
    );
    expect(c.sessionAssignments).toEqual([
      { name: 'sql_mode', value: "'STRICT_ALL_TABLES'" },
      { name: 'time_zone', value: "'+00:00'" },
      { name: 'wait_timeout', value: 'DEFAULT' },
      { name: 'max_join_size', value: '1000' },
      { name: 'x', value: "CONCAT(@@sql_mode, ',X')" },
    ]);
    expect(c.setsGlobal).toBe(false);
    expect(classify('SELECT 1').sessionAssignments).toBeNull();
  });

  it('leaves out user variables and GLOBAL assignments, flagging the latter', () => {
    const c = classify('SET @x = 5, @@global.max_connections = 10, sql_mode = \'\', GLOBAL a = 1, b = 2, SESSION c = 3');
    expect(c.sessionAssignments).toEqual([
      { name: 'sql_mode', value: "''" },
      { name: 'c', value: '3' },
    ]);
    expect(c.setsGlobal).toBe(true);
    expect(classify('SET @x := 1').sessionAssignments).toEqual([]);
    expect(classify('SET @x := 1').setsGlobal).toBe(false);
    expect(classify('SET PERSIST max_connections = 10').setsGlobal).toBe(true);
  });

  it('reads SET NAMES and SET CHARACTER SET', () => {
    expect(classify('SET NAMES utf8mb4').sessionAssignments).toEqual([{ name: 'names', value: 'utf8mb4' }]);
    expect(classify("SET NAMES 'utf8mb4'   COLLATE  'utf8mb4_bin'").sessionAssignments).toEqual([
      { name: 'names', value: "'utf8mb4' COLLATE 'utf8mb4_bin'" },
    ]);
    expect(classify('SET CHARACTER SET utf8').sessionAssignments).toEqual([{ name: 'character set', value: 'utf8' }]);
    expect(classify('SET CHARSET latin1, autocommit = 1').sessionAssignments).toEqual([
      { name: 'character set', value: 'latin1' },
      { name: 'autocommit', value: '1' },
    ]);
  });

  it('reports nothing for SET TRANSACTION', () => {
    expect(classify('SET TRANSACTION ISOLATION LEVEL READ COMMITTED, READ ONLY').sessionAssignments).toEqual([]);
    expect(classify('SET SESSION TRANSACTION READ WRITE').sessionAssignments).toEqual([]);
    expect(classify('SET GLOBAL TRANSACTION ISOLATION LEVEL SERIALIZABLE').setsGlobal).toBe(true);
  });

  it('reads SET ROLE and gives up on what it cannot parse', () => {
    expect(classify('SET ROLE app_reader').sessionAssignments).toEqual([{ name: 'role', value: 'app_reader' }]);
    const bad = classify('SET = 1');
    expect(bad.type).toBe('other');
    expect(bad.sessionAssignments).toBeNull();
    expect(bad.tablesWritten).toBeNull();
  });
});

describe('USE', () => {
  it('gives the schema without quotes and with its case', () => {
    expect(classify('USE shop').useSchema).toBe('shop');
    expect(classify('USE `My Shop`;').useSchema).toBe('My Shop');
    expect(classify('SELECT 1').useSchema).toBeNull();
  });
});

describe('asksAboutPrevious', () => {
  it('finds the statements that ask about the previous one, in any spelling', async () => {
    const { asksAboutPrevious } = await import('../src/sql/classifier.js');
    for (const sql of ['SHOW WARNINGS', 'show errors limit 1', 'SHOW COUNT(*) WARNINGS', 'SELECT FOUND_ROWS()', 'select row_count ( )', 'SELECT @@warning_count', 'SELECT @@session.error_count, 1']) {
      expect(asksAboutPrevious(classify(sql)), sql).toBe(true);
    }
    for (const sql of ['SHOW TABLES', 'SELECT found_rows FROM t', 'SELECT warning_count FROM t', 'SELECT 1', 'UPDATE t SET a = ROW_COUNT()']) {
      expect(asksAboutPrevious(classify(sql)), sql).toBe(false);
    }
  });
});
