import {
  constants,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  privateDecrypt,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { LRUCache } from 'lru-cache';
import { sha1 } from './native_password.js';

/**
 * caching_sha2_password, server side, as pure functions.
 *
 * Fast authentication: the client answers the 20-byte nonce with
 *   token = SHA256(password) XOR SHA256(SHA256(SHA256(password)) + nonce)
 * A server that knows stage2 = SHA256(SHA256(password)) computes
 * SHA256(stage2 + nonce), XORs it out of the token to get the client's
 * SHA256(password), and checks that hashing it once gives stage2. The proxy
 * answers [0x01, 0x03] (fast auth success) or [0x01, 0x04] (perform full
 * authentication) in an AuthMoreData packet.
 *
 * Full authentication: the client then sends its password
 *   - in clear, NUL-terminated, over TLS (libmysqlclient also over a Unix
 *     socket or shared memory);
 *   - otherwise RSA-encrypted: XOR(password + NUL, nonce repeated), encrypted
 *     with RSA_PKCS1_OAEP_PADDING (OAEP, SHA-1 and MGF1-SHA-1, empty label:
 *     OpenSSL's default, which libmysqlclient, MariaDB Connector/C and mysql2
 *     all use) under the server's public key. A client that has no key sends
 *     [0x02] first and gets the PEM key back as AuthMoreData [0x01, PEM].
 *
 * Only hashes are stored by mysql.user for mysql_native_password accounts, so
 * the proxy cannot check a fast-auth token for them until it has seen the
 * password once in a full authentication: Sha2CredentialCache keeps what is
 * learnt then (SHA256 stage2 for later fast logins, SHA1(password) for the
 * backend's mysql_native_password login).
 */

export const CACHING_SHA2_PLUGIN = 'caching_sha2_password';

/** Server → client status bytes after the scramble reply (sent as a packet: [0x01, byte]). */
export const enum Sha2Status {
  FastAuthSuccess = 0x03,
  PerformFullAuthentication = 0x04,
}

/** Client → server: 0x02 asks for the server's RSA public key. */
export const REQUEST_PUBLIC_KEY = 0x02;

/** Length of the nonce (the handshake scramble) the protocol uses; longer buffers are cut to it. */
const NONCE_LENGTH = 20;
const SHA256_LENGTH = 32;
const SHA1_LENGTH = 20;

export function sha256(...parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

function toBytes(password: Buffer | string): Buffer {
  return typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

/** Length-checked timingSafeEqual: false (not a throw) when the lengths differ. */
export function constantTimeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** SHA256(SHA256(password)): what the proxy keeps to check fast authentication. */
export function sha256Stage2(password: Buffer | string): Buffer {
  return sha256(sha256(toBytes(password)));
}

/**
 * The client's scramble reply for a nonce (what a client computes):
 * XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)), nonce)). Empty password → empty token.
 */
export function cachingSha2Token(password: Buffer | string, nonce: Buffer): Buffer {
  const bytes = toBytes(password);
  if (bytes.length === 0) return Buffer.alloc(0);
  const stage1 = sha256(bytes);
  return xor(stage1, sha256(sha256(stage1), nonce.subarray(0, NONCE_LENGTH)));
}

/**
 * The reply of a client without a password: libmysqlclient and Connector/J
 * send a single 0x00 byte, mysql2 and MariaDB Connector/C an empty reply.
 * MySQL accepts both for an account with an empty password.
 */
export function isEmptyPasswordReply(token: Buffer): boolean {
  return token.length === 0 || (token.length === 1 && token[0] === 0);
}

/**
 * Fast authentication: true when `token` proves knowledge of the password
 * whose stage2 is `stage2` for this 20-byte nonce (constant-time compare).
 * Not for empty-password accounts (see isEmptyPasswordReply).
 */
export function verifyFastAuth(token: Buffer, nonce: Buffer, stage2: Buffer): boolean {
  if (token.length !== SHA256_LENGTH || stage2.length !== SHA256_LENGTH || nonce.length < NONCE_LENGTH) return false;
  const candidateStage1 = xor(token, sha256(stage2, nonce.subarray(0, NONCE_LENGTH)));
  return timingSafeEqual(sha256(candidateStage1), stage2);
}

/**
 * Full authentication over TLS: the client sends the password in clear,
 * NUL-terminated; returns the password bytes (without the NUL). A reply
 * without the terminator is taken whole.
 */
export function cleartextPassword(payload: Buffer): Buffer {
  const end = payload.length > 0 && payload[payload.length - 1] === 0 ? payload.length - 1 : payload.length;
  return Buffer.from(payload.subarray(0, end));
}

/**
 * Full authentication with RSA (no TLS): decrypts the client's payload with
 * the private key (RSA_PKCS1_OAEP_PADDING with SHA-1, as libmysqlclient,
 * MariaDB Connector/C and mysql2 encrypt), XORs it with the nonce repeated
 * and strips the trailing NUL. Throws on a wrong key or garbage.
 */
export function decryptPassword(encrypted: Buffer, nonce: Buffer, privateKey: KeyObject): Buffer {
  if (nonce.length < NONCE_LENGTH) {
    throw new Error(`caching_sha2_password: the nonce must be ${NONCE_LENGTH} bytes, got ${nonce.length}`);
  }
  let plain: Buffer;
  try {
    plain = privateDecrypt(
      { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
      encrypted,
    );
  } catch (err) {
    throw new Error(
      `caching_sha2_password: cannot decrypt the client's RSA-encrypted password (${encrypted.length} bytes): ` +
        'not RSA-OAEP (SHA-1) data for this server key',
      { cause: err },
    );
  }
  const seed = nonce.subarray(0, NONCE_LENGTH);
  for (let i = 0; i < plain.length; i++) plain[i] ^= seed[i % NONCE_LENGTH];
  if (plain.length === 0 || plain[plain.length - 1] !== 0) {
    throw new Error('caching_sha2_password: the decrypted password is not NUL-terminated (wrong nonce or malformed reply)');
  }
  return plain.subarray(0, plain.length - 1);
}

function readKeyFile(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read the RSA ${what} key file ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function spkiPem(key: KeyObject): Buffer {
  return Buffer.from(key.export({ type: 'spki', format: 'pem' }));
}

/**
 * An RSA key pair: from PEM files when given, else generated (2048 bits).
 * Returns the public key as SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY",
 * what clients parse with PEM_read_bio_RSA_PUBKEY; sent as the payload of an
 * AuthMoreData packet [0x01, PEM bytes]) and the private KeyObject.
 * A private key file alone is enough (the public key is derived from it); a
 * public key file alone, a non-RSA or encrypted key, or files that don't form
 * a pair → Error.
 */
export function loadOrGenerateRsaKeyPair(files: {
  privateKeyFile: string | null;
  publicKeyFile: string | null;
}): { publicKeyPem: Buffer; privateKey: KeyObject } {
  const { privateKeyFile, publicKeyFile } = files;
  if (privateKeyFile === null) {
    if (publicKeyFile !== null) {
      throw new Error(`RSA public key file ${publicKeyFile} given without its private key file`);
    }
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    return { publicKeyPem: spkiPem(publicKey), privateKey };
  }

  const privatePem = readKeyFile(privateKeyFile, 'private');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(privatePem);
  } catch (err) {
    throw new Error(`${privateKeyFile} is not a PEM private key (an encrypted key is not supported): ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (privateKey.asymmetricKeyType !== 'rsa') {
    throw new Error(`${privateKeyFile} holds a ${privateKey.asymmetricKeyType ?? 'non-asymmetric'} key, not an RSA key`);
  }
  const derived = createPublicKey(privateKey);
  if (publicKeyFile === null) return { publicKeyPem: spkiPem(derived), privateKey };

  const publicPem = readKeyFile(publicKeyFile, 'public');
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey(publicPem);
  } catch (err) {
    throw new Error(`${publicKeyFile} is not a PEM public key: ${(err as Error).message}`, { cause: err });
  }
  const derivedDer = derived.export({ type: 'spki', format: 'der' });
  const givenDer = publicKey.export({ type: 'spki', format: 'der' });
  if (!derivedDer.equals(givenDer)) {
    throw new Error(`RSA key files ${privateKeyFile} and ${publicKeyFile} are not a pair: the public key does not match the private key`);
  }
  return { publicKeyPem: spkiPem(publicKey), privateKey };
}

/**
 * SHA1(SHA1(password)) of a cleartext password checked against a
 * mysql_native_password hash (20 bytes, constant-time). An empty hash (an
 * account without a password) matches only the empty password.
 */
export function matchesNativeHash(password: Buffer, passwordDoubleSha1: Buffer): boolean {
  if (passwordDoubleSha1.length === 0) return password.length === 0;
  if (passwordDoubleSha1.length !== SHA1_LENGTH || password.length === 0) return false;
  return timingSafeEqual(sha1(sha1(password)), passwordDoubleSha1);
}

interface LearntCredential {
  /** The mysql_native_password hash this was learnt under: a different one invalidates the entry. */
  passwordDoubleSha1: Buffer;
  sha256Stage2: Buffer;
  passwordSha1: Buffer;
}

/** Users remembered at once; the least recently used is forgotten first. */
const DEFAULT_MAX_USERS = 10_000;

/**
 * Credentials learnt per user from full authentications (cleartext), so
 * later logins of that user can use fast authentication and the backend login
 * has SHA1(password). Bounded (LRU); an entry is valid only under the
 * double-SHA1 hash it was learnt with, so a password changed in the config or
 * in mysql.user invalidates it.
 */
export class Sha2CredentialCache {
  private readonly entries: LRUCache<string, LearntCredential>;

  constructor(options: { maxUsers?: number } = {}) {
    this.entries = new LRUCache<string, LearntCredential>({ max: options.maxUsers ?? DEFAULT_MAX_USERS });
  }

  /**
   * Keeps SHA256(SHA256(password)) and SHA1(password) for the user. Only a
   * password that matches `passwordDoubleSha1` is kept (returns false
   * otherwise, and for an account without a password).
   */
  remember(user: string, passwordDoubleSha1: Buffer, password: Buffer): boolean {
    if (passwordDoubleSha1.length !== SHA1_LENGTH || !matchesNativeHash(password, passwordDoubleSha1)) return false;
    this.entries.set(user, {
      passwordDoubleSha1: Buffer.from(passwordDoubleSha1),
      sha256Stage2: sha256Stage2(password),
      passwordSha1: sha1(password),
    });
    return true;
  }

  lookup(user: string, passwordDoubleSha1: Buffer): { sha256Stage2: Buffer; passwordSha1: Buffer } | undefined {
    const entry = this.entries.get(user);
    if (!entry) return undefined;
    if (!entry.passwordDoubleSha1.equals(passwordDoubleSha1)) {
      this.entries.delete(user);
      return undefined;
    }
    return { sha256Stage2: entry.sha256Stage2, passwordSha1: entry.passwordSha1 };
  }

  forget(user: string): void {
    this.entries.delete(user);
  }

  /** Users currently remembered. */
  get size(): number {
    return this.entries.size;
  }
}
