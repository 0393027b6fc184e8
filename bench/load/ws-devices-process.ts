import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import WebSocket from 'ws';
import { visitEveryPeriod } from './every-member';

// A share of the connection bench's devices, in a process of its own (forked, IPC): each device
// holds a WebSocket over TLS to deviceconnect's path through the proxy under test, pings it as
// mender-connect does (a ping frame every period, pong expected; mender-connect: 54 s, scaled
// down by the bench) and answers the server's pings (ws does); some also poll deployments/next
// over a keep-alive TLS connection of their own, as the Mender client does between deployments.
// Input (argv[2], JSON): Setup. Commands arrive over IPC, one at a time, each answered with one
// message: connect (more WebSockets), pollers (open the poll connections), measure (echo and poll
// round trips for a while), leave (every device disconnects), stats.

interface Setup {
  host: string;
  port: number;
  ca: string;
  pingMs: number;
  /** WebSocket handshakes in flight at once in this process. */
  concurrency: number;
}

export type DeviceCommand =
  | { cmd: 'connect'; count: number }
  | { cmd: 'pollers'; count: number }
  | { cmd: 'measure'; seconds: number; echoPerSec: number; pollEveryMs: number }
  | { cmd: 'leave' }
  | { cmd: 'stats' };

export interface CpuMs {
  cpuMs: number;
}
export interface ConnectResult extends CpuMs {
  established: number;
  /** The key exchange group negotiated (e.g. X25519MLKEM768 or X25519). */
  keyExchange?: string;
  failed: number;
  firstError?: string;
  ms: number;
}
export interface MeasureResult extends CpuMs {
  /** Round trips in ms, every sample (the parent merges children for the p99). */
  echoMs: number[];
  pollMs: number[];
  echoLost: number;
  pollFailed: number;
}
export interface StatsResult extends CpuMs {
  open: number;
  /** WebSockets or poll connections that closed while the device meant to stay. */
  dropped: number;
  pingsSent: number;
  pongsMissing: number;
}

const CONNECT = '/api/devices/v1/deviceconnect/connect';
const NEXT = '/api/devices/v1/deployments/device/deployments/next?device_type=bench&artifact_name=bench-1';

const setup = JSON.parse(process.argv[2]) as Setup;
// One context for every connection: building it per connection (parsing the CA) would cost the
// client more than the handshake it measures. No session is offered: every handshake is full,
// as 10,000 distinct devices make. BENCH_CONN_GROUPS: the key exchange groups offered (default:
// this runtime's, X25519MLKEM768 first on Node 24; "X25519:P-256" offers what a client on
// OpenSSL 3.0 does, e.g. mender-client 5 on Debian 12, and what nginx 1.22 can take).
const groups = process.env.BENCH_CONN_GROUPS;
const secureContext = tls.createSecureContext({ ca: readFileSync(setup.ca), ...(groups ? { ecdhCurve: groups } : {}) });
/** The key exchange the server chose for the last WebSocket opened (the same for every one). */
let keyExchange: string | undefined;
const sockets = new Set<WebSocket>();
const pollers: Poller[] = [];
const awaitingPong = new WeakSet<WebSocket>();
let leaving = false;
let dropped = 0;
let pingsSent = 0;
let pongsMissing = 0;
const echoSent = new Map<number, number>();
let echoSeq = 0;
let echoMs: number[] = [];

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function openSocket(): Promise<string | undefined> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`wss://${setup.host}:${setup.port}${CONNECT}`, {
      secureContext,
      servername: 'localhost',
      perMessageDeflate: false,
      headers: { Authorization: 'Bearer bench-device' },
      handshakeTimeout: 60_000,
    } as WebSocket.ClientOptions);
    let opened = false;
    ws.on('open', () => {
      opened = true;
      const info = (ws as unknown as { _socket?: tls.TLSSocket })._socket?.getEphemeralKeyInfo();
      keyExchange ??= info && 'name' in info ? info.name : undefined;
      sockets.add(ws);
      resolve(undefined);
    });
    ws.on('pong', () => awaitingPong.delete(ws));
    ws.on('message', (data: Buffer) => {
      if (data.length < 8) return;
      const seq = data.readUInt32BE(0);
      const t0 = echoSent.get(seq);
      if (t0 === undefined) return;
      echoSent.delete(seq);
      echoMs.push(performance.now() - t0);
    });
    ws.on('error', (err) => {
      if (!opened) resolve(err.message);
    });
    ws.on('close', () => {
      if (opened && !leaving) dropped++;
      sockets.delete(ws);
      if (!opened) resolve('closed before open');
    });
  });
}

async function connect(count: number): Promise<ConnectResult> {
  const c0 = cpuMs();
  const t0 = performance.now();
  let established = 0;
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(setup.concurrency, count) }, async () => {
      while (next < count) {
        next++;
        const err = await openSocket();
        if (err === undefined) established++;
        else {
          failed++;
          firstError ??= err;
        }
      }
    }),
  );
  return { established, failed, firstError, keyExchange, ms: performance.now() - t0, cpuMs: cpuMs() - c0 };
}

// Like mender-connect: one ping per period per device; a ping still unanswered when the next is
// due counts as a missed pong.
visitEveryPeriod(sockets, setup.pingMs, (ws) => {
  if (ws.readyState !== WebSocket.OPEN) return;
  if (awaitingPong.has(ws)) pongsMissing++;
  awaitingPong.add(ws);
  ws.ping('60');
  pingsSent++;
});

/** deployments/next on a keep-alive TLS connection of its own: one request at a time, 204 expected. */
class Poller {
  private socket?: tls.TLSSocket;
  private pending?: { t0: number; done: (ms: number | undefined) => void };
  private head = '';
  open(): Promise<boolean> {
    return new Promise((resolve) => {
      const s = tls.connect({ host: setup.host, port: setup.port, secureContext, servername: 'localhost' }, () => {
        this.socket = s;
        s.setNoDelay(true);
        resolve(true);
      });
      s.setEncoding('latin1');
      s.on('data', (text: string) => {
        this.head += text;
        const end = this.head.indexOf('\r\n\r\n');
        if (end < 0 || !this.pending) return;
        // 204: no body; anything else fails the poll (and the connection is closed).
        const ok = this.head.startsWith('HTTP/1.1 204');
        this.head = this.head.slice(end + 4);
        const p = this.pending;
        this.pending = undefined;
        p.done(ok ? performance.now() - p.t0 : undefined);
        if (!ok) s.destroy();
      });
      s.on('error', () => undefined);
      s.on('close', () => {
        if (this.socket && !leaving) dropped++;
        this.socket = undefined;
        this.pending?.done(undefined);
        this.pending = undefined;
        resolve(false);
      });
    });
  }
  poll(): Promise<number | undefined> {
    const s = this.socket;
    if (!s || this.pending) return Promise.resolve(undefined);
    return new Promise((done) => {
      this.pending = { t0: performance.now(), done };
      s.write(`GET ${NEXT} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer bench-device\r\nUser-Agent: bench\r\n\r\n`);
    });
  }
  close(): void {
    this.socket?.destroy();
  }
}

async function openPollers(count: number): Promise<ConnectResult> {
  const c0 = cpuMs();
  const t0 = performance.now();
  const made = Array.from({ length: count }, () => new Poller());
  const ok = await Promise.all(made.map((p) => p.open()));
  pollers.push(...made);
  const established = ok.filter(Boolean).length;
  return { established, failed: count - established, ms: performance.now() - t0, cpuMs: cpuMs() - c0 };
}

async function measure(seconds: number, echoPerSec: number, pollEveryMs: number): Promise<MeasureResult> {
  const c0 = cpuMs();
  echoMs = [];
  echoSent.clear();
  const pollMs: number[] = [];
  let pollFailed = 0;
  const end = performance.now() + seconds * 1000;
  // Echo: a 32-byte binary message (a msgpack ProtoMsg is about that size) on the next device
  // in turn, at a fixed rate.
  const list = [...sockets];
  let turn = 0;
  const perTick = echoPerSec / 100;
  let owed = 0;
  const echoTimer = setInterval(() => {
    owed += perTick;
    for (; owed >= 1 && list.length > 0; owed--) {
      const ws = list[turn++ % list.length];
      if (ws.readyState !== WebSocket.OPEN) continue;
      const msg = Buffer.alloc(32);
      const seq = ++echoSeq >>> 0;
      msg.writeUInt32BE(seq, 0);
      echoSent.set(seq, performance.now());
      ws.send(msg, { binary: true });
    }
  }, 10);
  // Polls: every poller once per period, spread over the period.
  await Promise.all(
    pollers.map(async (p) => {
      await new Promise((r) => setTimeout(r, Math.random() * pollEveryMs));
      while (performance.now() < end) {
        const started = performance.now();
        const ms = await p.poll();
        if (ms === undefined) pollFailed++;
        else pollMs.push(ms);
        const wait = pollEveryMs - (performance.now() - started);
        if (wait > 0) await new Promise((r) => setTimeout(r, Math.min(wait, Math.max(0, end - performance.now()))));
      }
    }),
  );
  const left = end - performance.now();
  if (left > 0) await new Promise((r) => setTimeout(r, left));
  clearInterval(echoTimer);
  // Echoes still out after a grace second are lost.
  await new Promise((r) => setTimeout(r, 1000));
  return { echoMs, pollMs, echoLost: echoSent.size, pollFailed, cpuMs: cpuMs() - c0 };
}

async function leave(): Promise<ConnectResult> {
  const c0 = cpuMs();
  const t0 = performance.now();
  leaving = true;
  const all = [...sockets];
  // mender-connect's Close() closes the connection without a close frame.
  await Promise.all(
    all.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.terminate();
        }),
    ),
  );
  for (const p of pollers) p.close();
  pollers.length = 0;
  return { established: all.length, failed: 0, ms: performance.now() - t0, cpuMs: cpuMs() - c0 };
}

process.on('message', (m: DeviceCommand) => {
  const reply = (r: unknown) => process.send!(r);
  if (m.cmd === 'connect') void connect(m.count).then(reply);
  else if (m.cmd === 'pollers') void openPollers(m.count).then(reply);
  else if (m.cmd === 'measure') void measure(m.seconds, m.echoPerSec, m.pollEveryMs).then(reply);
  else if (m.cmd === 'leave') void leave().then(reply);
  else if (m.cmd === 'stats') reply({ open: sockets.size, dropped, pingsSent, pongsMissing, cpuMs: cpuMs() } satisfies StatsResult);
});
process.on('disconnect', () => process.exit(0));
process.send!({ ready: true });
