import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** The scheduler state letter of one thread of `pid` ('T' once stopped), from /proc. */
function threadState(pid: number, tid: string): string {
  const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  const end = stat.lastIndexOf(')');
  return stat.slice(end + 2, end + 3);
}

/**
 * SIGSTOPs `pid` and resolves once every one of its threads is stopped.
 * Signal delivery is asynchronous: right after kill() a busy server can still
 * answer a query, which made tests of "a silent server" flaky.
 */
export async function stopProcess(pid: number, timeoutMs = 5000): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  const deadline = Date.now() + timeoutMs;
  while (!readdirSync(`/proc/${pid}/task`).every((tid) => threadState(pid, tid) === 'T')) {
    if (Date.now() > deadline) throw new Error(`process ${pid} did not stop within ${timeoutMs} ms`);
    await sleep(10);
  }
}
