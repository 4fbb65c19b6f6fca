/**
 * The key a backend connection is pooled under: everything its login decided
 * about the session it made (server, account and password, database,
 * character set, capabilities, TLS, tracking). Only a connection with the
 * very same key may serve another client without a new login.
 */
import type { BackendEndpoint } from '../config/types.js';
import type { BackendLogin } from './backend_connection.js';

/** loginKey by login and endpoint: a session lends its connections under the same login on every statement. */
const loginKeys = new WeakMap<BackendLogin, WeakMap<BackendEndpoint, string>>();

/** Everything a login decides about the session it makes. */
export function loginKey(endpoint: BackendEndpoint, login: BackendLogin): string {
  let byEndpoint = loginKeys.get(login);
  if (byEndpoint === undefined) {
    byEndpoint = new WeakMap();
    loginKeys.set(login, byEndpoint);
  }
  let key = byEndpoint.get(endpoint);
  if (key === undefined) {
    key = makeLoginKey(endpoint, login);
    byEndpoint.set(endpoint, key);
  }
  return key;
}

function makeLoginKey(endpoint: BackendEndpoint, login: BackendLogin): string {
  return [
    endpoint.host,
    endpoint.port,
    login.user,
    login.passwordSha1?.toString('hex') ?? '',
    login.database ?? '\0',
    login.characterSet,
    login.capabilities,
    login.mariaDbCapabilities,
    login.tls ? `tls:${login.tls.verify}` : 'plain',
    login.trackSession ? 'track' : 'plain',
  ].join('\u0001');
}
