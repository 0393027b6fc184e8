import { readFileSync } from 'node:fs';
import tls from 'node:tls';

// Full TLS handshakes per second with a client certificate: every request on a new connection,
// no session offered (Node's client resumes only when given `session`), `concurrency` loops for
// `seconds`. Each connection sends one GET and must read a 2xx status line.
// Input (argv[2], JSON): port, path, ca, cert, key, concurrency, seconds. Output: one JSON line.

interface Input {
  port: number;
  path: string;
  ca: string;
  cert: string;
  key: string;
  concurrency: number;
  seconds: number;
}

function once(o: Input, secureContext: tls.SecureContext): Promise<{ ok: boolean; resumed: boolean }> {
  return new Promise((resolve) => {
    let head = '';
    let resumed = false;
    // noDelay: the request follows the client's Finished flight at once; with Nagle it waits
    // for the server's delayed ACK (~40 ms) and the figure measures that, not handshakes.
    const socket = tls.connect({ host: '127.0.0.1', port: o.port, secureContext, servername: 'localhost' }, () => {
      resumed = socket.isSessionReused();
      socket.setNoDelay(true);
      socket.write(`GET ${o.path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    });
    socket.setEncoding('utf8');
    socket.on('data', (t: string) => {
      if (head.length < 64) head += t;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ ok: /^HTTP\/1\.1 2\d\d/.test(head), resumed }));
  });
}

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2]) as Input;
  // One context for every connection: building it per connection (parsing the CA, the key)
  // would cost the client more than the handshake it measures.
  const secureContext = tls.createSecureContext({ ca: readFileSync(o.ca), cert: readFileSync(o.cert), key: readFileSync(o.key) });
  let ok = 0;
  let failed = 0;
  let resumed = 0;
  const t0 = performance.now();
  const end = t0 + o.seconds * 1000;
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      while (performance.now() < end) {
        const r = await once(o, secureContext);
        if (r.ok) ok++;
        else failed++;
        if (r.resumed) resumed++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(`${JSON.stringify({ handshakes: ok, failed, resumed, seconds, perSec: ok / seconds })}\n`);
}

main().catch((err) => {
  process.stderr.write(`handshakes: ${(err as Error).stack}\n`);
  process.exit(1);
});
