/** A cache request for one statement, as unit tests of the cache policy build it: user app, schema shop, autocommit. */
import type { CacheRequest } from '../src/cache/cache_policy.js';
import { ServerStatus } from '../src/protocol/constants.js';
import { classify } from '../src/sql/classifier.js';

export function cacheRequest(sql: string, over: Partial<CacheRequest> = {}): CacheRequest {
  return {
    statement: classify(sql),
    binary: false,
    metadataFlags: 0,
    params: '',
    user: 'app',
    schema: 'shop',
    stateKey: 'login=45/0',
    clientAddress: '10.1.2.3',
    status: ServerStatus.AUTOCOMMIT,
    ...over,
  };
}
