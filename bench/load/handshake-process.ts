import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import tls from 'node:tls';
import { runMain } from '../part-timer';

// TLS handshakes per second with client certificates, as client 5.1 polls: every request on a
// new connection (small-box target 6, docs/benchmarks.md). Devices take turns, each connection presenting the next
// device's certificate. `resume`: each device offers the session (TLS 1.3 ticket / PSK) it got
// on its previous connection; the sessions are kept in `sessionsFile` between rounds, and a
// device without one first connects once, untimed. Without `resume` no session is offered
// (Node's client resumes only when given `session`): every handshake is full.
// Each connection sends one GET and must read a 2xx status line.
// Input (argv[2], JSON): see Input. Output: one JSON line.

interface Input {
  port: number;
  path: string;
  headers?: Record<string, string>;
  /** Each device sends its own token (fakeDeviceToken of `first` + its index). */
  tokens?: { first: number };
  /** The CA the client trusts for the server. */
  ca: string;
  devices: { cert: string; key: string }[];
  concurrency: number;
  seconds: number;
  resume?: boolean;
  sessionsFile?: string;
  /** Stop after this many connections (e.g. every device once) instead of at `seconds`. */
  count?: number;
}

/** A JWT-shaped token whose `sub` names device `i` (unsigned: only the lean stub sees it, and takes any bearer token). */
export function fakeDeviceToken(i: number): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part({ sub: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`, 'mender.device': true })}.c2ln`;
}

interface Result {
  ok: boolean;
  resumed: boolean;
}

function once(
  o: Input,
  request: string,
  secureContext: tls.SecureContext,
  session: Buffer | undefined,
  keep: (s: Buffer) => void,
): Promise<Result> {
  return new Promise((resolve) => {
    let head = '';
    let resumed = false;
    // noDelay: the request follows the client's Finished flight at once; with Nagle it waits
    // for the server's delayed ACK (~40 ms) and the figure measures that, not handshakes.
    const socket = tls.connect({ host: '127.0.0.1', port: o.port, secureContext, servername: 'localhost', session }, () => {
      resumed = socket.isSessionReused();
      socket.setNoDelay(true);
      socket.write(request);
    });
    if (o.resume) socket.on('session', keep);
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
  const headers = Object.entries(o.headers ?? {})
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const requestOf = (i: number) =>
    `GET ${o.path} HTTP/1.1\r\nHost: localhost\r\n${headers}${o.tokens ? `Authorization: Bearer ${fakeDeviceToken(o.tokens.first + i)}\r\n` : ''}Connection: close\r\n\r\n`;
  const requests = o.devices.map((_, i) => requestOf(i));
  // One context per device, made before the clock starts: building it per connection (parsing
  // the CA, the key) would cost the client more than the handshake it measures.
  const ca = readFileSync(o.ca);
  const contexts = o.devices.map((d) => tls.createSecureContext({ ca, cert: readFileSync(d.cert), key: readFileSync(d.key) }));
  const sessions: (Buffer | undefined)[] =
    o.resume && o.sessionsFile && existsSync(o.sessionsFile)
      ? (JSON.parse(readFileSync(o.sessionsFile, 'utf8')) as (string | null)[]).map((s) => (s ? Buffer.from(s, 'base64') : undefined))
      : [];
  const connect = (i: number) =>
    once(o, requests[i], contexts[i], o.resume ? sessions[i] : undefined, (s) => {
      sessions[i] = s;
    });

  let primed = 0;
  if (o.resume) {
    // Untimed: devices that have no session yet get one.
    const missing = contexts.map((_, i) => i).filter((i) => !sessions[i]);
    primed = missing.length;
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        for (let i = missing.shift(); i !== undefined; i = missing.shift()) await connect(i);
      }),
    );
  }

  let ok = 0;
  let failed = 0;
  let resumed = 0;
  let turn = 0;
  const t0 = performance.now();
  const end = t0 + o.seconds * 1000;
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      while (performance.now() < end && (o.count === undefined || turn < o.count)) {
        const r = await connect(turn++ % contexts.length);
        if (r.ok) ok++;
        else failed++;
        if (r.ok && r.resumed) resumed++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  if (o.resume && o.sessionsFile) writeFileSync(o.sessionsFile, JSON.stringify(sessions.map((s) => s?.toString('base64') ?? null)));
  process.stdout.write(
    `${JSON.stringify({ handshakes: ok, failed, resumed, seconds, perSec: ok / seconds, primed, devices: Math.min(turn, contexts.length) })}\n`,
  );
}

runMain('handshakes', main);
