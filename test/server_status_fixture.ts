/** A monitor's status snapshot of one backend, as unit tests of the selector and the plan set it up. */
import type { BackendConfig } from '../src/config/types.js';
import type { ServerState, ServerStatus } from '../src/routing/server_status.js';

export function serverStatus(b: BackendConfig, state: ServerState): ServerStatus {
  return {
    name: b.name,
    host: b.host,
    port: b.port,
    weight: b.weight,
    configuredRole: b.role,
    state,
    reachable: state !== 'down',
    readOnly: b.role !== 'primary',
    replicating: b.role === 'primary' ? null : true,
    lagSeconds: b.role === 'primary' ? null : 0,
    lagSource: null,
    gtidPosition: null,
    serverId: null,
    consecutiveBad: 0,
    consecutiveGood: 3,
    inRotation: state === 'up',
    lastError: null,
    lastCheckAt: 0,
    flavor: 'mariadb',
  };
}
