import http from 'node:http';
import type { Socket } from 'node:net';
import { connectProxy } from '../../spec/support/connect-proxy';
import { BLOB_MIB } from './blob-size';

// The loopback Mender server for bench/upstream-engines.ts, in a process of its own (argv[2]
// 'proxy': the CONNECT proxy of the outbound-proxy rows instead). It answers a
// deployments/next poll with JSON, any other request with 200 and no body once the request body
// is read (GET /blob: a 128 MiB artifact), and an Upgrade with 101, then holds the socket (echoing) until the client leaves.

const NEXT = JSON.stringify({
  id: 'f8ab2a2c-52d9-4e1d-9d8e-0a1f5e6c3b21',
  artifact: {
    artifact_name: 'release-2026-12',
    source: { uri: 'https://s3.example.com/artifacts/f8ab2a2c?X-Amz-Signature=0123456789abcdef', expire: '2026-12-31T00:00:00Z' },
    device_types_compatible: ['raspberrypi4'],
  },
});

/** An artifact from the origin: BLOB_MIB MiB of one repeated MiB, with back-pressure. */
const MIB = Buffer.alloc(1024 * 1024, 7);
function blob(res: http.ServerResponse): void {
  res.writeHead(200, { 'Content-Length': BLOB_MIB * MIB.length, 'Content-Type': 'application/octet-stream' });
  let left = BLOB_MIB;
  const more = (): void => {
    while (left > 0) {
      left--;
      if (!res.write(MIB)) return void res.once('drain', more);
    }
    res.end();
  };
  more();
}

function stub(): http.Server {
  const server = http.createServer((req, res) => {
    req.on('data', () => undefined);
    req.on('end', () => {
      if (req.url === '/blob') return blob(res);
      if (req.url?.endsWith('/deployments/next'))
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(NEXT) }).end(NEXT);
      else res.writeHead(200, { 'Content-Length': 0 }).end();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on('upgrade', (_req: http.IncomingMessage, socket: Socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.write(d));
    socket.on('error', () => socket.destroy());
  });
  return server;
}

const server = process.argv[2] === 'proxy' ? connectProxy().server : stub();
server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as { port: number }).port }));
// RSS read after a full collection (the bench forks with --expose-gc).
process.on('message', (m) => {
  if (m !== 'gc') return;
  global.gc?.();
  process.send?.('gc-done');
});
