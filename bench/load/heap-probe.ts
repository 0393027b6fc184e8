import WebSocket from 'ws';

// A debug hook from outside: the gateway started with `--inspect=127.0.0.1:PORT` is asked
// through the inspector protocol to collect garbage and report process.memoryUsage(), so a
// bench can take the heap before and after some traffic without any code in the gateway; or a
// CPU profile of some traffic (--cpu-prof is refused in NODE_OPTIONS).

export interface HeapProbe {
  /** Full GC, then process.memoryUsage() of the inspected process. */
  measure(): Promise<NodeJS.MemoryUsage>;
  /** CPU profile of the inspected process while `during` runs (a .cpuprofile JSON). */
  profile(during: () => Promise<unknown>): Promise<string>;
  close(): void;
}

export async function openHeapProbe(inspectPort: number): Promise<HeapProbe> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject));
  let id = 0;
  const pending = new Map<number, (result: unknown) => void>();
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data)) as { id?: number; result?: unknown };
    if (msg.id !== undefined) pending.get(msg.id)?.(msg.result);
  });
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve) => {
      pending.set(++id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  return {
    async measure() {
      // Twice: the first pass can leave work for finalizers (closed sockets' handles).
      await call('HeapProfiler.collectGarbage');
      await new Promise((r) => setTimeout(r, 200));
      await call('HeapProfiler.collectGarbage');
      const r = (await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })) as {
        result: { value: string };
      };
      return JSON.parse(r.result.value) as NodeJS.MemoryUsage;
    },
    async profile(during) {
      await call('Profiler.enable');
      await call('Profiler.setSamplingInterval', { interval: 200 });
      await call('Profiler.start');
      await during();
      const r = (await call('Profiler.stop')) as { profile: unknown };
      await call('Profiler.disable');
      return JSON.stringify(r.profile);
    },
    close: () => ws.close(),
  };
}
