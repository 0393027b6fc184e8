import WebSocket from 'ws';

// A debug hook from outside: the gateway started with `--inspect=127.0.0.1:PORT` is asked
// through the inspector protocol to collect garbage and report process.memoryUsage(), so a
// bench can take the heap before and after some traffic without any code in the gateway.

export interface HeapProbe {
  /** Full GC, then process.memoryUsage() of the inspected process. */
  measure(): Promise<NodeJS.MemoryUsage>;
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
      const r = (await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })) as { result: { value: string } };
      return JSON.parse(r.result.value) as NodeJS.MemoryUsage;
    },
    close: () => ws.close(),
  };
}
