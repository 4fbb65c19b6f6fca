/**
 * Failed-login throttling for the whole proxy: per client address and per
 * account (a guesser spread over many addresses), with the blocks it
 * decides. With worker threads the main thread's guard decides, and every
 * thread applies its blocks (`block()`), a restarted one too (`blocks()`).
 */
import { LoginThrottle } from './login_throttle.js';

export type BlockKind = 'address' | 'account';

export interface LoginBlock {
  kind: BlockKind;
  key: string;
  until: number;
}

export class LoginGuard {
  private readonly addresses: LoginThrottle;
  private readonly accounts: LoginThrottle;
  private readonly listeners: ((block: LoginBlock) => void)[] = [];

  constructor(failuresPerMinute: number, blockMs: number) {
    this.addresses = new LoginThrottle(failuresPerMinute, blockMs);
    this.accounts = new LoginThrottle(failuresPerMinute, blockMs);
  }

  /** New limits (a reload): blocks in force stay until their time is up. */
  configure(failuresPerMinute: number, blockMs: number): void {
    this.addresses.configure(failuresPerMinute, blockMs);
    this.accounts.configure(failuresPerMinute, blockMs);
  }

  /** A failed login from `address` to `user`: the blocks it starts (none, one or both). */
  failed(address: string, user: string): LoginBlock[] {
    const started: LoginBlock[] = [];
    if (this.addresses.failed(address)) started.push({ kind: 'address', key: address, until: this.addresses.blockedUntil(address) });
    if (this.accounts.failed(user)) started.push({ kind: 'account', key: user, until: this.accounts.blockedUntil(user) });
    for (const block of started) for (const listener of this.listeners) listener(block);
    return started;
  }

  /** Milliseconds `address` stays blocked, or 0. */
  addressBlockedFor(address: string): number {
    return this.addresses.blockedFor(address);
  }

  /** Milliseconds `user` stays blocked, or 0. */
  accountBlockedFor(user: string): number {
    return this.accounts.blockedFor(user);
  }

  /** Hears every block decided here. */
  onBlock(listener: (block: LoginBlock) => void): void {
    this.listeners.push(listener);
  }

  /** The blocks in force. */
  blocks(): LoginBlock[] {
    return [
      ...this.addresses.blocks().map((b) => ({ kind: 'address' as const, ...b })),
      ...this.accounts.blocks().map((b) => ({ kind: 'account' as const, ...b })),
    ];
  }

  /** Applies a block decided by another thread's guard. */
  block(block: LoginBlock): void {
    (block.kind === 'address' ? this.addresses : this.accounts).block(block.key, block.until);
  }
}
