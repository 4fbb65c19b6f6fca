// What the benchmarks' Node proxies share (bench/byte_pipe.mjs, bench/hit_ceiling.mjs): the command line
// `node FILE LISTEN_PORT TARGET_HOST:TARGET_PORT`, a listener on 127.0.0.1 that connects each client to the
// target (no delay on either socket; an end or an error on either side ends both), and a quiet exit on
// SIGTERM and SIGINT. `onPair(client, upstream)` moves the bytes.
import net from 'node:net';

export function servePipes(name, onPair) {
  const [listenArg, target] = process.argv.slice(2);
  const listenPort = Number(listenArg);
  const sep = target?.lastIndexOf(':') ?? -1;
  if (!Number.isInteger(listenPort) || sep < 1) {
    process.stderr.write(`usage: node bench/${name}.mjs LISTEN_PORT TARGET_HOST:TARGET_PORT\n`);
    process.exit(2);
  }
  const host = target.slice(0, sep);
  const port = Number(target.slice(sep + 1));
  const server = net.createServer((client) => {
    const upstream = net.connect({ host, port });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    onPair(client, upstream);
  });
  server.listen(listenPort, '127.0.0.1', () => process.stderr.write(`${name} listening on 127.0.0.1:${listenPort} -> ${host}:${port}\n`));
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
}
