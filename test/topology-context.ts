import { inject } from 'vitest';
import type { TopologyInfo } from '../scripts/topology.js';

declare module 'vitest' {
  export interface ProvidedContext {
    topology: TopologyInfo;
  }
}

/** The shared MariaDB/memcached topology started by test/global-setup.ts. */
export function getTopology(): TopologyInfo {
  const topo = inject('topology');
  if (topo === undefined) throw new Error('topology not provided: is test/global-setup.ts the vitest globalSetup?');
  return topo;
}
