#!/usr/bin/env node
// Baseline TCP byte pipe: the least any Node proxy pays on this machine.
// Usage: node bench/byte_pipe.mjs LISTEN_PORT TARGET_HOST:TARGET_PORT
import net from 'node:net';

const [listenArg, target] = process.argv.slice(2);
const listenPort = Number(listenArg);
const sep = target?.lastIndexOf(':') ?? -1;
if (!Number.isInteger(listenPort) || sep < 1) {
  process.stderr.write('usage: node bench/byte_pipe.mjs LISTEN_PORT TARGET_HOST:TARGET_PORT\n');
  process.exit(2);
}
const host = target.slice(0, sep);
const port = Number(target.slice(sep + 1));

const server = net.createServer((client) => {
  const upstream = net.connect({ host, port });
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.pipe(upstream).pipe(client);
  const close = () => { client.destroy(); upstream.destroy(); };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
});
server.listen(listenPort, '127.0.0.1', () => process.stderr.write(`byte_pipe listening on 127.0.0.1:${listenPort} -> ${host}:${port}\n`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
