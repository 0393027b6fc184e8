import http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { visitEveryPeriod } from '../load/every-member';

// The upstream of the connection bench, in a process of its own (forked, IPC): a deviceconnect
// stand-in that checks nothing heavy. /api/devices/v1/deviceconnect/connect upgrades to a
// WebSocket that echoes every message
// and pings the device as deviceconnect does: once on connect, then every ping period
// (deviceconnect: pongWait 60 s × 9/10 = 54 s; the bench scales it down, see connections.ts).
// deployments/device/deployments/next answers 204 (nothing due). Input (argv[2], JSON):
// { pingMs }. Messages: → { ready, port }; ← 'count' → { connected }.

const CONNECT = '/api/devices/v1/deviceconnect/connect';
const NEXT = '/api/devices/v1/deployments/device/deployments/next';

function main(): void {
  const { pingMs } = JSON.parse(process.argv[2] ?? '{}') as { pingMs: number };
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
  const sockets = new Set<WebSocket>();
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(req.url?.startsWith(NEXT) ? 204 : 404).end();
  });
  server.keepAliveTimeout = 120_000;
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!req.url?.startsWith(CONNECT)) return void socket.destroy();
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('message', (data, binary) => ws.send(data, { binary }));
      ws.on('close', () => sockets.delete(ws));
      ws.on('error', () => undefined);
      ws.ping();
    });
  });
  // deviceconnect pings each device once per period.
  visitEveryPeriod(sockets, pingMs, (ws) => {
    if (ws.readyState === ws.OPEN) ws.ping();
  }).unref();
  server.listen(0, '127.0.0.1', () => {
    process.send!({ ready: true, port: (server.address() as { port: number }).port });
  });
  process.on('message', (m: string) => {
    if (m === 'count') process.send!({ connected: sockets.size });
  });
  process.on('disconnect', () => process.exit(0));
}

main();
