import type { TestProject } from 'vitest/node';
import { startTopology, stopTopology } from '../scripts/topology.js';
import type {} from './topology-context.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const topo = await startTopology();
  project.provide('topology', topo);
  return async () => {
    await stopTopology(topo);
  };
}
