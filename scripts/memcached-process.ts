/** A throwaway memcached for the fixture captures: a free port, started and checked until it accepts. */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function startMemcached(port: number): Promise<ChildProcess> {
  const child = spawn('/usr/bin/memcached', ['-u', 'nobody', '-l', '127.0.0.1', '-p', String(port), '-U', '0'], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) return child;
    await sleep(50);
  }
  child.kill();
  throw new Error('memcached did not start');
}

