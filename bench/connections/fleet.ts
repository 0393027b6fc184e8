import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { ConnectResult, DeviceCommand, MeasureResult, StatsResult } from '../load/ws-devices-process';

// The bench's devices: several load-generator processes (bench/load/ws-devices-process.ts), each
// given an equal share of every command; their answers are summed. Also the echo upstream.

export interface Fleet {
  size: number;
  pids(): number[];
  connect(total: number): Promise<ConnectResult>;
  pollers(total: number): Promise<ConnectResult>;
  measure(seconds: number, echoPerSec: number, pollEveryMs: number): Promise<MeasureResult>;
  leave(): Promise<ConnectResult>;
  stats(): Promise<StatsResult>;
  stop(): void;
}

interface Child {
  proc: ChildProcess;
  ask<T>(m: DeviceCommand): Promise<T>;
}

function forkReady(script: string, input: unknown): Promise<{ proc: ChildProcess; first: Record<string, unknown> }> {
  const proc = fork(path.join(__dirname, script), [JSON.stringify(input)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const kill = () => proc.kill('SIGKILL');
  process.on('exit', kill);
  proc.once('exit', () => process.off('exit', kill));
  return new Promise((resolve, reject) => {
    proc.once('message', (m) => resolve({ proc, first: m as Record<string, unknown> }));
    proc.once('exit', (code) => reject(new Error(`${script} exited (${code}) before it was ready`)));
  });
}

function asker(proc: ChildProcess): Child['ask'] {
  // One command at a time per child: answers come back in order.
  let chain: Promise<unknown> = Promise.resolve();
  return <T>(m: DeviceCommand) => {
    const next = chain.then(
      () =>
        new Promise<T>((resolve, reject) => {
          const onExit = (code: number | null) => reject(new Error(`device process exited (${code}) during ${m.cmd}`));
          proc.once('exit', onExit);
          proc.once('message', (r) => {
            proc.off('exit', onExit);
            resolve(r as T);
          });
          proc.send(m);
        }),
    );
    chain = next.catch(() => undefined);
    return next;
  };
}

const share = (total: number, i: number, n: number) => Math.floor(total / n) + (i < total % n ? 1 : 0);

export async function startFleet(
  n: number,
  setup: { host: string; port: number; ca: string; pingMs: number; concurrency: number },
): Promise<Fleet> {
  const children: Child[] = [];
  for (let i = 0; i < n; i++) {
    const { proc } = await forkReady('../load/ws-devices-process.js', setup);
    children.push({ proc, ask: asker(proc) });
  }
  const sumConnect = (rs: ConnectResult[]): ConnectResult => ({
    established: rs.reduce((a, r) => a + r.established, 0),
    failed: rs.reduce((a, r) => a + r.failed, 0),
    firstError: rs.find((r) => r.firstError)?.firstError,
    keyExchange: rs.find((r) => r.keyExchange)?.keyExchange,
    ms: Math.max(...rs.map((r) => r.ms)),
    cpuMs: rs.reduce((a, r) => a + r.cpuMs, 0),
  });
  const each = <T>(m: (i: number) => DeviceCommand) => Promise.all(children.map((c, i) => c.ask<T>(m(i))));
  return {
    size: n,
    pids: () => children.map((c) => c.proc.pid!),
    connect: async (total) => sumConnect(await each<ConnectResult>((i) => ({ cmd: 'connect', count: share(total, i, n) }))),
    pollers: async (total) => sumConnect(await each<ConnectResult>((i) => ({ cmd: 'pollers', count: share(total, i, n) }))),
    async measure(seconds, echoPerSec, pollEveryMs) {
      const rs = await each<MeasureResult>(() => ({ cmd: 'measure', seconds, echoPerSec: echoPerSec / n, pollEveryMs }));
      return {
        echoMs: rs.flatMap((r) => r.echoMs),
        pollMs: rs.flatMap((r) => r.pollMs),
        echoLost: rs.reduce((a, r) => a + r.echoLost, 0),
        pollFailed: rs.reduce((a, r) => a + r.pollFailed, 0),
        cpuMs: rs.reduce((a, r) => a + r.cpuMs, 0),
      };
    },
    leave: async () => sumConnect(await each<ConnectResult>(() => ({ cmd: 'leave' }))),
    async stats() {
      const rs = await each<StatsResult>(() => ({ cmd: 'stats' }));
      return {
        open: rs.reduce((a, r) => a + r.open, 0),
        dropped: rs.reduce((a, r) => a + r.dropped, 0),
        pingsSent: rs.reduce((a, r) => a + r.pingsSent, 0),
        pongsMissing: rs.reduce((a, r) => a + r.pongsMissing, 0),
        cpuMs: rs.reduce((a, r) => a + r.cpuMs, 0),
      };
    },
    stop() {
      for (const c of children) c.proc.kill('SIGKILL');
    },
  };
}

export interface EchoUpstream {
  port: number;
  pid: number;
  connected(): Promise<number>;
  stop(): void;
}

export async function startEchoUpstream(pingMs: number): Promise<EchoUpstream> {
  const { proc, first } = await forkReady('echo-upstream.js', { pingMs });
  return {
    port: first.port as number,
    pid: proc.pid!,
    connected: () =>
      new Promise((resolve) => {
        proc.once('message', (m) => resolve((m as { connected: number }).connected));
        proc.send('count');
      }),
    stop: () => void proc.kill('SIGKILL'),
  };
}
