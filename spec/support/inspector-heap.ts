import WebSocket from 'ws';

/** A process's V8 heap used after a full GC, through its inspector (`--inspect=127.0.0.1:0`; one
 * short session per call: HeapProfiler.collectGarbage, then Runtime.getHeapUsage). */
export async function heapAfterGc(inspectorUrl: string): Promise<number> {
  const ws = new WebSocket(inspectorUrl, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let id = 0;
  const pending = new Map<number, (result: Record<string, unknown>) => void>();
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data)) as { id?: number; result?: Record<string, unknown> };
    if (msg.id !== undefined) pending.get(msg.id)?.(msg.result ?? {});
  });
  const send = (method: string): Promise<Record<string, unknown>> =>
    new Promise((resolve) => {
      pending.set(++id, resolve);
      ws.send(JSON.stringify({ id, method }));
    });
  try {
    await send('HeapProfiler.collectGarbage');
    return Number((await send('Runtime.getHeapUsage')).usedSize);
  } finally {
    ws.close();
  }
}
