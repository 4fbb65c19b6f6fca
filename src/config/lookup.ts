/** Lookups on a validated configuration. */
import type { BackendConfig, UserConfig, WirecacheConfig } from './types.js';

/** The configured user with exactly this name (MySQL user names are case-sensitive). */
export function findUser(config: Pick<WirecacheConfig, 'users'>, name: string): UserConfig | undefined {
  return config.users.find((u) => u.name === name);
}

/**
 * The backend configured with role: primary, or the first backend when none
 * is (undefined only for an empty list; a validated config has at least one).
 */
export function configuredPrimary(backends: readonly BackendConfig[]): BackendConfig | undefined {
  return backends.find((b) => b.role === 'primary') ?? backends[0];
}
