/**
 * Building accounts (UserConfig) from what an operator or mysql.user gives:
 * a plain password, or its mysql_native_password hash ("*" + 40 hex digits).
 * Shared by the config loader and the users read from the database.
 */
import { createHash } from 'node:crypto';
import type { UserConfig } from './types.js';

/** mysql.user's mysql_native_password hash: "*" followed by SHA1(SHA1(password)) as 40 hex digits. */
export const PASSWORD_HASH_RE = /^\*[0-9a-fA-F]{40}$/;

/** True when `text` has the form of a mysql_native_password hash ("*" + 40 hex digits). */
export function isPasswordHash(text: string): boolean {
  return PASSWORD_HASH_RE.test(text);
}

/** An account known by its mysql.user hash ("*" + 40 hex digits). */
export function hashedUser(name: string, hash: string, requireTls = false): UserConfig {
  return { name, passwordDoubleSha1: Buffer.from(hash.slice(1), 'hex'), emptyPassword: false, passwordSha1: null, sha256Stage2: null, requireTls };
}

/** An account with its plain password: every digest any plugin needs is known. */
export function plainUser(name: string, password: string, requireTls = false): UserConfig {
  if (password === '') return { name, passwordDoubleSha1: Buffer.alloc(0), emptyPassword: true, passwordSha1: null, sha256Stage2: null, requireTls };
  const sha1 = createHash('sha1').update(password).digest();
  const sha256 = createHash('sha256').update(password).digest();
  return {
    name,
    passwordDoubleSha1: createHash('sha1').update(sha1).digest(),
    emptyPassword: false,
    passwordSha1: sha1,
    sha256Stage2: createHash('sha256').update(sha256).digest(),
    requireTls,
  };
}

/** SHA1(SHA1(password)): what MySQL stores (hex, after "*") for mysql_native_password. */
export function doubleSha1(password: string | Buffer): Buffer {
  const once = createHash('sha1').update(password).digest();
  return createHash('sha1').update(once).digest();
}
