import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { OriginReady, OriginRequest } from './origin-process';

// The orchestrator's handle on the origin process (Mender emulator + S3 store).

export interface ObjectCounts {
  requests: number;
  fullDownloads: number;
  bytesServed: number;
}

export interface OriginHandle extends OriginReady {
  pid: number;
  /** Upload a file under `key`; resolves to a presigned GET URL (6 h). */
  put(key: string, file: string): Promise<string>;
  stats(key: string): Promise<ObjectCounts>;
  throttle(bytesPerSecond: number): Promise<void>;
  stop(): Promise<void>;
}

type Pending = Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export async function startOrigin(): Promise<OriginHandle> {
  const child: ChildProcess = fork(path.join(__dirname, 'origin-process.js'), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const pending: Pending = new Map();
  let nextId = 1;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = await new Promise<OriginReady>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`bench origin exited (${code}) before it was ready`)));
    child.on('message', (m: { ready?: true; id?: number; result?: unknown; error?: string }) => {
      if (m.ready) return resolve(m as OriginReady);
      const p = pending.get(m.id ?? -1);
      if (!p) return;
      pending.delete(m.id!);
      if (m.error) p.reject(new Error(m.error));
      else p.resolve(m.result);
    });
  });
  const call = <T>(req: DistributiveOmit<OriginRequest, 'id'>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ ...req, id });
    });
  return {
    ...ready,
    pid: child.pid!,
    put: (key, file) => call<string>({ cmd: 'put', key, file }),
    stats: (key) => call<ObjectCounts>({ cmd: 'stats', key }),
    throttle: (bytesPerSecond) => call<void>({ cmd: 'throttle', bytesPerSecond }),
    async stop() {
      if (child.exitCode !== null) return;
      child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
