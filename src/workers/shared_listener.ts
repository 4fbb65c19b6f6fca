/**
 * One listening socket for every worker thread. Node 20 has no SO_REUSEPORT
 * (libuv 1.46), and worker threads cannot be handed sockets; but they share
 * the process's descriptors, so each worker listens on a descriptor of the
 * same socket and the kernel gives each connection to the worker that
 * accepts it first (a busy worker accepts later: the idle ones take more).
 *
 * Each worker gets a duplicate of its own (native/fd_dup.c): libuv closes a
 * server's descriptor when the server goes, a crashed worker's included, and
 * a shared descriptor would close the listener for every thread. The main
 * thread keeps one duplicate that no event loop watches, so it accepts
 * nothing itself, and hands out new ones to restarted workers.
 */
import { closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';

interface FdDupAddon {
  dup(fd: number): number;
}

let addon: FdDupAddon | null | undefined;

/** The native dup(), or null (with the reason) when the addon was not built. */
export function nativeDup(): { dup: (fd: number) => number } | { error: string } {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)('../../build/Release/fd_dup.node') as FdDupAddon;
    } catch (err) {
      addon = null;
      loadError = (err as Error).message;
    }
  }
  return addon ? { dup: (fd) => addon!.dup(fd) } : { error: `native addon build/Release/fd_dup.node not loaded (run npm install): ${loadError}` };
}
let loadError = '';

export class SharedListener {
  private constructor(
    private fd: number,
    readonly address: net.AddressInfo,
    private readonly dup: (fd: number) => number,
  ) {}

  /** Binds and listens on host:port, keeps a duplicate of the socket, and closes the server that made it. */
  static async open(host: string, port: number, backlog = 511): Promise<SharedListener> {
    const native = nativeDup();
    if ('error' in native) throw new Error(native.error);
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, backlog }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address() as net.AddressInfo;
    const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
    const kept = native.dup(fd);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return new SharedListener(kept, address, native.dup);
  }

  /** A new descriptor of the socket for one worker (it closes it, by closing its server). */
  forWorker(): number {
    if (this.fd < 0) throw new Error('the shared listener is closed');
    return this.dup(this.fd);
  }

  /** Closes the main thread's descriptor: the socket closes once every worker's server has closed too. */
  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }
}
