import { constants, createHash, createPublicKey, generateKeyPairSync, publicEncrypt, randomBytes, type KeyLike } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CACHING_SHA2_PLUGIN,
  REQUEST_PUBLIC_KEY,
  Sha2CredentialCache,
  Sha2Status,
  cachingSha2Token,
  cleartextPassword,
  constantTimeEqual,
  decryptPassword,
  isEmptyPasswordReply,
  loadOrGenerateRsaKeyPair,
  matchesNativeHash,
  sha256,
  sha256Stage2,
  verifyFastAuth,
} from '../src/auth/caching_sha2_password.js';
import { generateScramble, sha1 } from '../src/auth/native_password.js';

const PASSWORDS: Array<Buffer | string> = [
  'secret',
  'x',
  'pässwörd-日本語-🔑',
  'a'.repeat(300),
  Buffer.from([0xff, 0xfe, 0x80, 0x01, 0x7f, 0xc3]), // not valid UTF-8
];

const bytesOf = (p: Buffer | string) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p);
/** A nonce that differs from `nonce` in every byte. */
const flipped = (nonce: Buffer) => Buffer.from(nonce.map((b) => b ^ 0x01));

/** What a client does without TLS: XOR(password + NUL, nonce repeated), then RSA-OAEP (SHA-1) under the server key. */
function clientEncrypt(password: Buffer, nonce: Buffer, publicKey: KeyLike, oaepHash = 'sha1'): Buffer {
  const plain = Buffer.concat([password, Buffer.from([0])]);
  for (let i = 0; i < plain.length; i++) plain[i] ^= nonce[i % 20];
  return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, plain);
}

describe('caching_sha2_password constants', () => {
  it('uses the protocol values', () => {
    expect(CACHING_SHA2_PLUGIN).toBe('caching_sha2_password');
    expect(Sha2Status.FastAuthSuccess).toBe(3);
    expect(Sha2Status.PerformFullAuthentication).toBe(4);
    expect(REQUEST_PUBLIC_KEY).toBe(2);
  });

  it('sha256 hashes the concatenation of its parts', () => {
    expect(sha256(Buffer.from('ab'), Buffer.from('c')).toString('hex')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', // SHA-256("abc")
    );
    expect(sha256Stage2('abc').equals(sha256(sha256(Buffer.from('abc'))))).toBe(true);
  });
});

describe('fast authentication', () => {
  it('accepts the token of the right password for several passwords and nonces', () => {
    for (const password of PASSWORDS) {
      const stage2 = sha256Stage2(password);
      for (const nonce of [generateScramble(), randomBytes(20)]) {
        const token = cachingSha2Token(password, nonce);
        expect(token.length).toBe(32);
        expect(verifyFastAuth(token, nonce, stage2)).toBe(true);
        // A string password and its UTF-8 bytes are the same password.
        expect(cachingSha2Token(bytesOf(password), nonce).equals(token)).toBe(true);
      }
    }
  });

  it('makes scrambles of 20 printable bytes, never the same twice, across refills of its random pool', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const s = generateScramble();
      expect(s.length).toBe(20);
      for (const b of s) expect(b >= 0x21 && b <= 0x7e).toBe(true);
      seen.add(s.toString('latin1'));
    }
    expect(seen.size).toBe(1000);
  });

  it('gives a different token for another nonce', () => {
    const a = generateScramble();
    expect(cachingSha2Token('secret', a).equals(cachingSha2Token('secret', flipped(a)))).toBe(false);
  });

  it('uses only the first 20 bytes of the nonce (a NUL-terminated scramble works)', () => {
    const nonce = generateScramble();
    const withNul = Buffer.concat([nonce, Buffer.from([0])]);
    const token = cachingSha2Token('secret', withNul);
    expect(token.equals(cachingSha2Token('secret', nonce))).toBe(true);
    expect(verifyFastAuth(token, withNul, sha256Stage2('secret'))).toBe(true);
  });

  it('rejects a wrong password, a wrong nonce, a wrong stage2 and malformed tokens', () => {
    const nonce = generateScramble();
    const stage2 = sha256Stage2('secret');
    const token = cachingSha2Token('secret', nonce);
    expect(verifyFastAuth(cachingSha2Token('Secret', nonce), nonce, stage2)).toBe(false);
    expect(verifyFastAuth(cachingSha2Token('secret ', nonce), nonce, stage2)).toBe(false);
    expect(verifyFastAuth(token, flipped(nonce), stage2)).toBe(false);
    expect(verifyFastAuth(token, nonce, sha256Stage2('other'))).toBe(false);
    expect(verifyFastAuth(token.subarray(0, 31), nonce, stage2)).toBe(false);
    expect(verifyFastAuth(token.subarray(0, 20), nonce, stage2)).toBe(false);
    expect(verifyFastAuth(Buffer.concat([token, Buffer.from([0])]), nonce, stage2)).toBe(false);
    expect(verifyFastAuth(Buffer.alloc(0), nonce, stage2)).toBe(false);
    expect(verifyFastAuth(token, nonce.subarray(0, 19), stage2)).toBe(false);
    expect(verifyFastAuth(token, nonce, stage2.subarray(0, 20))).toBe(false);
    const corrupted = Buffer.from(token);
    corrupted[31] ^= 0x80;
    expect(verifyFastAuth(corrupted, nonce, stage2)).toBe(false);
  });

  it('gives an empty token for an empty password; empty replies are recognised', () => {
    expect(cachingSha2Token('', generateScramble()).length).toBe(0);
    expect(cachingSha2Token(Buffer.alloc(0), generateScramble()).length).toBe(0);
    expect(isEmptyPasswordReply(Buffer.alloc(0))).toBe(true);
    expect(isEmptyPasswordReply(Buffer.from([0]))).toBe(true);
    expect(isEmptyPasswordReply(Buffer.from([1]))).toBe(false);
    expect(isEmptyPasswordReply(Buffer.from([0, 0]))).toBe(false);
    expect(isEmptyPasswordReply(cachingSha2Token('x', generateScramble()))).toBe(false);
  });
});

describe('cleartextPassword', () => {
  it('strips the trailing NUL, keeps a reply without one whole', () => {
    expect(cleartextPassword(Buffer.from('secret\0')).toString()).toBe('secret');
    expect(cleartextPassword(Buffer.from('secret')).toString()).toBe('secret');
    expect(cleartextPassword(Buffer.from('pässwörd\0', 'utf8')).toString('utf8')).toBe('pässwörd');
    expect(cleartextPassword(Buffer.from([0])).length).toBe(0);
    expect(cleartextPassword(Buffer.alloc(0)).length).toBe(0);
    expect(cleartextPassword(Buffer.from('ab\0\0')).equals(Buffer.from('ab\0'))).toBe(true);
  });

  it('returns a copy, not a view of the packet buffer', () => {
    const payload = Buffer.from('secret\0');
    const password = cleartextPassword(payload);
    payload.fill(0x41);
    expect(password.toString()).toBe('secret');
  });
});

describe('RSA full authentication', () => {
  const { publicKeyPem, privateKey } = loadOrGenerateRsaKeyPair({ privateKeyFile: null, publicKeyFile: null });

  it('generates a 2048-bit RSA pair with an SPKI PEM public key', () => {
    expect(privateKey.type).toBe('private');
    expect(privateKey.asymmetricKeyType).toBe('rsa');
    expect(privateKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    const pem = publicKeyPem.toString('ascii');
    expect(pem.startsWith('-----BEGIN PUBLIC KEY-----\n')).toBe(true);
    expect(pem.trimEnd().endsWith('-----END PUBLIC KEY-----')).toBe(true);
  });

  it('generates a fresh pair each time', () => {
    const other = loadOrGenerateRsaKeyPair({ privateKeyFile: null, publicKeyFile: null });
    expect(other.publicKeyPem.equals(publicKeyPem)).toBe(false);
  });

  it('decrypts what a client encrypted, for passwords shorter and longer than the nonce', () => {
    for (const password of [...PASSWORDS.slice(0, 3), 'p'.repeat(100), PASSWORDS[4]]) {
      const nonce = generateScramble();
      const bytes = bytesOf(password);
      const encrypted = clientEncrypt(bytes, nonce, publicKeyPem);
      expect(encrypted.length).toBe(256);
      expect(decryptPassword(encrypted, nonce, privateKey).equals(bytes)).toBe(true);
    }
  });

  it('decrypts an empty password (just the NUL)', () => {
    const nonce = generateScramble();
    expect(decryptPassword(clientEncrypt(Buffer.alloc(0), nonce, publicKeyPem), nonce, privateKey).length).toBe(0);
  });

  it('accepts a NUL-terminated 21-byte scramble as the nonce', () => {
    const nonce = generateScramble();
    const encrypted = clientEncrypt(Buffer.from('secret'), nonce, publicKeyPem);
    const password = decryptPassword(encrypted, Buffer.concat([nonce, Buffer.from([0])]), privateKey);
    expect(password.toString()).toBe('secret');
  });

  it('throws on garbage, truncation, another key, another padding or hash, and a wrong nonce', () => {
    const nonce = generateScramble();
    const good = clientEncrypt(Buffer.from('secret'), nonce, publicKeyPem);
    expect(() => decryptPassword(randomBytes(256), nonce, privateKey)).toThrow(/cannot decrypt/);
    expect(() => decryptPassword(good.subarray(0, 255), nonce, privateKey)).toThrow(/cannot decrypt/);
    expect(() => decryptPassword(Buffer.alloc(0), nonce, privateKey)).toThrow(/cannot decrypt/);
    const otherPair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(() => decryptPassword(clientEncrypt(Buffer.from('secret'), nonce, otherPair.publicKey), nonce, privateKey)).toThrow(
      /cannot decrypt/,
    );
    expect(() => decryptPassword(clientEncrypt(Buffer.from('secret'), nonce, publicKeyPem, 'sha256'), nonce, privateKey)).toThrow(
      /cannot decrypt/,
    );
    const pkcs1v15 = publicEncrypt({ key: publicKeyPem, padding: constants.RSA_PKCS1_PADDING }, Buffer.from('secret\0'));
    expect(() => decryptPassword(pkcs1v15, nonce, privateKey)).toThrow(/cannot decrypt/);
    // The NUL terminator comes out as 0x01 when every nonce byte is off by one.
    expect(() => decryptPassword(good, flipped(nonce), privateKey)).toThrow(/NUL-terminated/);
    expect(() => decryptPassword(good, nonce.subarray(0, 19), privateKey)).toThrow(/20 bytes/);
    // Still fine with the right inputs.
    expect(decryptPassword(good, nonce, privateKey).toString()).toBe('secret');
  });
});

describe('loadOrGenerateRsaKeyPair from files', () => {
  let dir: string;
  const pair = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const other = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  const file = (name: string) => join(dir, name);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'wirecache-sha2-'));
    writeFileSync(file('private.pem'), pair.privateKey);
    writeFileSync(file('public.pem'), pair.publicKey);
    // openssl genrsa's traditional "BEGIN RSA PRIVATE KEY" and "BEGIN RSA PUBLIC KEY" forms
    writeFileSync(file('other-private-pkcs1.pem'), other.privateKey);
    writeFileSync(file('other-public-pkcs1.pem'), createPublicKey(other.publicKey).export({ type: 'pkcs1', format: 'pem' }));
    writeFileSync(file('other-public.pem'), other.publicKey);
    writeFileSync(file('garbage.pem'), 'not a key\n');
    const ec = generateKeyPairSync('ec', {
      namedCurve: 'prime256v1',
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    writeFileSync(file('ec-private.pem'), ec.privateKey);
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function roundTrip(loaded: ReturnType<typeof loadOrGenerateRsaKeyPair>): string {
    const nonce = generateScramble();
    return decryptPassword(clientEncrypt(Buffer.from('from-file'), nonce, loaded.publicKeyPem), nonce, loaded.privateKey).toString();
  }

  it('loads a matching PKCS#8 / SPKI pair', () => {
    const loaded = loadOrGenerateRsaKeyPair({ privateKeyFile: file('private.pem'), publicKeyFile: file('public.pem') });
    expect(loaded.publicKeyPem.toString()).toBe(pair.publicKey);
    expect(roundTrip(loaded)).toBe('from-file');
  });

  it('loads PKCS#1 ("RSA PRIVATE KEY" / "RSA PUBLIC KEY") files and sends the public key as SPKI', () => {
    const loaded = loadOrGenerateRsaKeyPair({
      privateKeyFile: file('other-private-pkcs1.pem'),
      publicKeyFile: file('other-public-pkcs1.pem'),
    });
    expect(loaded.publicKeyPem.toString()).toBe(other.publicKey);
    expect(roundTrip(loaded)).toBe('from-file');
  });

  it('derives the public key from a private key file given alone', () => {
    const loaded = loadOrGenerateRsaKeyPair({ privateKeyFile: file('private.pem'), publicKeyFile: null });
    expect(loaded.publicKeyPem.toString()).toBe(pair.publicKey);
    expect(roundTrip(loaded)).toBe('from-file');
  });

  it('rejects files that do not form a pair', () => {
    expect(() => loadOrGenerateRsaKeyPair({ privateKeyFile: file('private.pem'), publicKeyFile: file('other-public.pem') })).toThrow(
      /not a pair/,
    );
    expect(() =>
      loadOrGenerateRsaKeyPair({ privateKeyFile: file('other-private-pkcs1.pem'), publicKeyFile: file('public.pem') }),
    ).toThrow(/not a pair/);
  });

  it('rejects a public key alone, missing files, garbage and non-RSA keys', () => {
    expect(() => loadOrGenerateRsaKeyPair({ privateKeyFile: null, publicKeyFile: file('public.pem') })).toThrow(/without its private key/);
    expect(() => loadOrGenerateRsaKeyPair({ privateKeyFile: file('missing.pem'), publicKeyFile: null })).toThrow(/cannot read/);
    expect(() => loadOrGenerateRsaKeyPair({ privateKeyFile: file('private.pem'), publicKeyFile: file('missing.pem') })).toThrow(
      /cannot read/,
    );
    expect(() => loadOrGenerateRsaKeyPair({ privateKeyFile: file('garbage.pem'), publicKeyFile: null })).toThrow(/not a PEM private key/);
    expect(() => loadOrGenerateRsaKeyPair({ privateKeyFile: file('private.pem'), publicKeyFile: file('garbage.pem') })).toThrow(
      /not a PEM public key/,
    );
    expect(() => loadOrGenerateRsaKeyPair({ privateKeyFile: file('ec-private.pem'), publicKeyFile: null })).toThrow(/not an RSA key/);
  });
});

describe('matchesNativeHash', () => {
  // mysql.user's hash of 'password' (PASSWORD('password') in MySQL 5.7).
  const PASSWORD_HASH = Buffer.from('2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19', 'hex');

  it('matches the mysql_native_password hash of the right password only', () => {
    expect(matchesNativeHash(Buffer.from('password'), PASSWORD_HASH)).toBe(true);
    expect(matchesNativeHash(Buffer.from('Password'), PASSWORD_HASH)).toBe(false);
    expect(matchesNativeHash(Buffer.from('password\0'), PASSWORD_HASH)).toBe(false);
    expect(matchesNativeHash(Buffer.from('password'), PASSWORD_HASH.subarray(0, 19))).toBe(false);
    const pw = Buffer.from('pässwörd', 'utf8');
    expect(matchesNativeHash(pw, sha1(sha1(pw)))).toBe(true);
  });

  it('treats an empty hash as the account without a password', () => {
    expect(matchesNativeHash(Buffer.alloc(0), Buffer.alloc(0))).toBe(true);
    expect(matchesNativeHash(Buffer.from('x'), Buffer.alloc(0))).toBe(false);
    expect(matchesNativeHash(Buffer.alloc(0), PASSWORD_HASH)).toBe(false);
  });

  it('constantTimeEqual compares contents and lengths', () => {
    expect(constantTimeEqual(Buffer.from('abc'), Buffer.from('abc'))).toBe(true);
    expect(constantTimeEqual(Buffer.from('abc'), Buffer.from('abd'))).toBe(false);
    expect(constantTimeEqual(Buffer.from('abc'), Buffer.from('ab'))).toBe(false);
  });
});

describe('Sha2CredentialCache', () => {
  const pw = Buffer.from('s3cret-ü');
  const hash = sha1(sha1(pw));

  it('remembers what fast authentication and the backend login need', () => {
    const cache = new Sha2CredentialCache();
    expect(cache.lookup('alice', hash)).toBeUndefined();
    expect(cache.remember('alice', hash, pw)).toBe(true);
    const got = cache.lookup('alice', hash);
    expect(got).toBeDefined();
    expect(got!.sha256Stage2.equals(sha256Stage2(pw))).toBe(true);
    expect(got!.passwordSha1.equals(createHash('sha1').update(pw).digest())).toBe(true);
    const nonce = generateScramble();
    expect(verifyFastAuth(cachingSha2Token(pw, nonce), nonce, got!.sha256Stage2)).toBe(true);
    // Users are distinct (and case-sensitive, as MySQL user names).
    expect(cache.lookup('bob', hash)).toBeUndefined();
    expect(cache.lookup('Alice', hash)).toBeUndefined();
  });

  it('is invalidated when the stored hash changes', () => {
    const cache = new Sha2CredentialCache();
    cache.remember('alice', hash, pw);
    const newPw = Buffer.from('changed');
    const newHash = sha1(sha1(newPw));
    expect(cache.lookup('alice', newHash)).toBeUndefined();
    // The stale entry is gone, even if asked again with the old hash.
    expect(cache.lookup('alice', hash)).toBeUndefined();
    expect(cache.size).toBe(0);
    expect(cache.remember('alice', newHash, newPw)).toBe(true);
    expect(cache.lookup('alice', newHash)!.sha256Stage2.equals(sha256Stage2(newPw))).toBe(true);
  });

  it('does not keep a password that does not match the hash, nor an account without password', () => {
    const cache = new Sha2CredentialCache();
    expect(cache.remember('alice', hash, Buffer.from('wrong'))).toBe(false);
    expect(cache.lookup('alice', hash)).toBeUndefined();
    expect(cache.remember('nopw', Buffer.alloc(0), Buffer.alloc(0))).toBe(false);
    expect(cache.size).toBe(0);
  });

  it('keeps its own copy of the hash', () => {
    const cache = new Sha2CredentialCache();
    const mutable = Buffer.from(hash);
    cache.remember('alice', mutable, pw);
    mutable.fill(0);
    expect(cache.lookup('alice', hash)).toBeDefined();
  });

  it('forgets a user', () => {
    const cache = new Sha2CredentialCache();
    cache.remember('alice', hash, pw);
    cache.remember('bob', hash, pw);
    cache.forget('alice');
    expect(cache.lookup('alice', hash)).toBeUndefined();
    expect(cache.lookup('bob', hash)).toBeDefined();
  });

  it('is bounded, forgetting the least recently used user', () => {
    const cache = new Sha2CredentialCache({ maxUsers: 2 });
    cache.remember('a', hash, pw);
    cache.remember('b', hash, pw);
    expect(cache.lookup('a', hash)).toBeDefined(); // a is now more recent than b
    cache.remember('c', hash, pw);
    expect(cache.size).toBe(2);
    expect(cache.lookup('b', hash)).toBeUndefined();
    expect(cache.lookup('a', hash)).toBeDefined();
    expect(cache.lookup('c', hash)).toBeDefined();
  });
});

/** mysql2's own client plugin (CommonJS, behind the package's "exports" map, so loaded by path). */
type Mysql2Sha2Plugin = ((options?: { overrideIsSecure?: boolean }) => (ctx: {
  connection: { config: { password: string } };
}) => (data: Buffer) => Buffer | null) & { calculateToken: (password: string, scramble: Buffer) => Buffer };

describe("mysql2's client implementation", () => {
  const require = createRequire(import.meta.url);
  const plugin = require(join(dirname(require.resolve('mysql2')), 'lib/auth_plugins/caching_sha2_password.js')) as Mysql2Sha2Plugin;
  const { publicKeyPem, privateKey } = loadOrGenerateRsaKeyPair({ privateKeyFile: null, publicKeyFile: null });
  const passwords = ['secret', 'pässwörd-日本語-🔑', 'a'.repeat(150)];

  it('computes the same fast-auth token', () => {
    for (const password of passwords) {
      const nonce = generateScramble();
      const theirs = plugin.calculateToken(password, nonce);
      expect(theirs.equals(cachingSha2Token(password, nonce))).toBe(true);
      expect(verifyFastAuth(theirs, nonce, sha256Stage2(password))).toBe(true);
    }
  });

  it('goes through fast auth success', () => {
    const nonce = generateScramble();
    const step = plugin({ overrideIsSecure: false })({ connection: { config: { password: 'secret' } } });
    const token = step(Buffer.concat([nonce, Buffer.from([0])]));
    expect(verifyFastAuth(token!, nonce, sha256Stage2('secret'))).toBe(true);
    expect(step(Buffer.from([Sha2Status.FastAuthSuccess]))).toBeNull();
  });

  it('asks for the public key with 0x02 and sends a password decryptPassword recovers', () => {
    for (const password of passwords) {
      const nonce = generateScramble();
      const step = plugin({ overrideIsSecure: false })({ connection: { config: { password } } });
      step(Buffer.concat([nonce, Buffer.from([0])]));
      const request = step(Buffer.from([Sha2Status.PerformFullAuthentication]));
      expect(request!.equals(Buffer.from([REQUEST_PUBLIC_KEY]))).toBe(true);
      const encrypted = step(publicKeyPem);
      expect(decryptPassword(encrypted!, nonce, privateKey).toString('utf8')).toBe(password);
    }
  });

  it('sends the cleartext password over a secure connection', () => {
    const nonce = generateScramble();
    const step = plugin({ overrideIsSecure: true })({ connection: { config: { password: 'pässwörd' } } });
    step(Buffer.concat([nonce, Buffer.from([0])]));
    const reply = step(Buffer.from([Sha2Status.PerformFullAuthentication]));
    expect(cleartextPassword(reply!).toString('utf8')).toBe('pässwörd');
  });
});
