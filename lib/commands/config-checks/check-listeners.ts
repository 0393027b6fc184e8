// check-config: can each enabled listener bind? Each configured address is bound on a
// throwaway server and closed again, so "address in use" is found before a start, not during.
// All are held open together until every one was tried: two keys on one port show up too.

import { createServer, type Server } from 'node:net';
import type { GatewayConfig } from '../../config/types';
import { parseListen } from '../../server/listen-address';

export interface ListenerResult {
  key: string;
  listen: string;
  /** null when it bound. */
  problem: string | null;
}

/** The enabled listeners as [key of the Listen setting, "host:port"]. */
export function enabledListeners(config: Readonly<GatewayConfig>): [string, string][] {
  const out: [string, string][] = [];
  if (config.HTTP.Enabled) out.push(['HTTP.Listen', config.HTTP.Listen]);
  if (config.HTTPS.Enabled) out.push(['HTTPS.Listen', config.HTTPS.Listen]);
  if (config.Metrics.Enabled) out.push(['Metrics.Listen', config.Metrics.Listen]);
  return out;
}

function explain(err: NodeJS.ErrnoException, port: number): string {
  if (err.code === 'EADDRINUSE') return 'in use (by a running gateway?)';
  if (err.code === 'EACCES' && port < 1024) return `port ${port} needs root or CAP_NET_BIND_SERVICE`;
  if (err.code === 'EACCES') return 'permission denied';
  if (err.code === 'EADDRNOTAVAIL') return 'no such address on this host';
  if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return 'host name does not resolve';
  return err.message;
}

function tryBind(server: Server, host: string | undefined, port: number): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err));
    // exclusive: in a cluster primary a shared handle would hide a conflict.
    server.listen({ host, port, exclusive: true }, () => resolve(null));
  });
}

export async function checkListeners(config: Readonly<GatewayConfig>): Promise<ListenerResult[]> {
  const results: ListenerResult[] = [];
  const open: Server[] = [];
  try {
    for (const [key, listen] of enabledListeners(config)) {
      let address: ReturnType<typeof parseListen>;
      try {
        address = parseListen(listen);
      } catch (err) {
        results.push({ key, listen, problem: (err as Error).message });
        continue;
      }
      const server = createServer();
      const err = await tryBind(server, address.host, address.port);
      if (err) results.push({ key, listen, problem: explain(err, address.port) });
      else {
        open.push(server);
        results.push({ key, listen, problem: null });
      }
    }
  } finally {
    await Promise.all(open.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
  return results;
}
