#!/usr/bin/env node
// Baseline TCP byte pipe: the least any Node proxy pays on this machine.
// Usage: node bench/byte_pipe.mjs LISTEN_PORT TARGET_HOST:TARGET_PORT
import { servePipes } from './pipe_server.mjs';

servePipes('byte_pipe', (client, upstream) => client.pipe(upstream).pipe(client));
