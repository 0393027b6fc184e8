import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { rawJsonResponse } from '../http/reply-error';
import type { RequestContext } from '../http/route';
import { isOutOfFiles, noteOutOfFiles } from '../observe/out-of-files';

// A device's WebSocket (any Upgrade) to the Mender server, held for hours by 10,000 devices at
// once: one upstream connection, the request head written once, the response head
// passed through as upstream sent it, then the two sockets joined byte for byte. Nothing of the
// request stays referenced once the upgrade is through: per device only the two sockets and
// the few listeners joining them remain (http-proxy's ws pass kept the request, the upstream
// response, an http.ClientRequest, two pipes and a socket timer per device, ~1 ms more CPU per
// connection set up; bench/connections-bench.ts measures both).
//
// A response other than 101 goes to the device as it came, and the device's connection ends
// with it: nothing the device sends after a refused upgrade reaches upstream unexamined.

/**
 * A joined tunnel is cut when either side has sent nothing for this long. Both ends of a
 * deviceconnect tunnel ping every 54 s (mender-connect: 9/10 of its 60 s DefaultPingWait;
 * the deviceconnect service: 9/10 of its 60 s pongWait), so a healthy idle terminal always
 * has traffic both ways within a minute; 120 s lets one ping be late or lost. A peer that
 * vanished without a FIN (power cut, NAT dropped) is cut within 120 s instead of never.
 */
export const TUNNEL_IDLE_MS = 120_000;

/** Longest upstream response head taken (a 101 head is a few hundred bytes). */
const MAX_HEAD = 16 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');

export interface TunnelOptions {
  /** A new connection to upstream (TCP or TLS), maybe not yet connected; through an outbound proxy, once its CONNECT tunnel is up. */
  dial(): Socket | Promise<Socket>;
  /** The Host upstream is asked for (its own, as http-proxy's changeOrigin did). */
  host: string;
  /** No response head within this long → the device's connection is closed. */
  timeoutMs: number;
  /** Once joined: either side silent this long → both closed (TUNNEL_IDLE_MS; 0: never). */
  idleMs: number;
}

/** `req.headers` must already hold what goes upstream (setForwardedHeaders). */
export function tunnelUpgrade(o: TunnelOptions, req: IncomingMessage, device: Socket, head: Buffer, ctx: RequestContext): void {
  let dialed: Socket | Promise<Socket>;
  try {
    dialed = o.dial();
  } catch (err) {
    refuse(err as Error, device, ctx.log, ctx.requestId);
    return;
  }
  if (!(dialed instanceof Promise)) {
    relay(o, dialed, req, device, head, ctx);
    return;
  }
  // Through a CONNECT tunnel: nothing reads the device's socket until it is up (its bytes wait).
  dialed.then(
    (upstream) => {
      if (device.destroyed) return void upstream.destroy();
      relay(o, upstream, req, device, head, ctx);
    },
    (err: Error) => refuse(err, device, ctx.log, ctx.requestId),
  );
}

function refuse(err: Error & { code?: string }, device: Socket, log: RequestContext['log'], requestId: string): void {
  const [status, message] = answerFor(err);
  if (!noteOutOfFiles(err, 'websocket dials')) log.warn('websocket to upstream failed', { err: err.code ?? err.message });
  if (device.writable) device.end(rawJsonResponse(status, message, requestId));
  else device.destroy();
}

function relay(o: TunnelOptions, upstream: Socket, req: IncomingMessage, device: Socket, head: Buffer, ctx: RequestContext): void {
  upstream.write(requestHead(req, o.host));
  // Only these two stay referenced by the listeners, not the request's context.
  const { log, requestId } = ctx;
  if (head.length > 0) upstream.write(head);
  let received: Buffer | undefined;
  let answered = false;

  const fail = (err: Error & { code?: string }) => {
    if (answered) return;
    answered = true;
    upstream.destroy();
    refuse(err, device, log, requestId);
  };
  upstream.setTimeout(o.timeoutMs, () => fail(Object.assign(new Error('no response head'), { code: 'ETIMEDOUT' })));
  upstream.on('error', fail);
  // Closed by upstream before a whole response head: answered as unreachable, not left hanging.
  upstream.once('close', () => fail(Object.assign(new Error('closed before answering'), { code: 'ECONNRESET' })));
  device.on('close', () => upstream.destroy());

  const onHead = (chunk: Buffer) => {
    received = received ? Buffer.concat([received, chunk]) : chunk;
    const end = received.indexOf(HEAD_END);
    if (end < 0) {
      if (received.length > MAX_HEAD) fail(new Error('upstream response head too long'));
      return;
    }
    answered = true;
    upstream.off('data', onHead);
    upstream.setTimeout(0);
    const all = received;
    received = undefined;
    // "HTTP/1.1 101 ..."; the head and whatever followed it go to the device unchanged.
    const switched = all.toString('latin1', 9, 12) === '101';
    device.write(all);
    if (switched) join(upstream, device, o.idleMs, log);
    else finishRefused(upstream, device, all, end + HEAD_END.length, o.timeoutMs);
  };
  upstream.on('data', onHead);
}

function answerFor(err: Error & { code?: string }): [number, string] {
  if (isOutOfFiles(err)) return [503, `gateway out of file descriptors (${err.code}): retry later`];
  if (err.code === 'ETIMEDOUT') return [504, 'upstream server timed out'];
  return [502, `upstream server unreachable: ${err.code ?? err.message}`];
}

/** Request line and headers as upstream gets them; Host is upstream's own. */
function requestHead(req: IncomingMessage, host: string): string {
  let text = `${req.method} ${req.url} HTTP/1.1\r\nhost: ${host}\r\n`;
  const headers = req.headers;
  for (const name in headers) {
    if (name === 'host') continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) text += `${name}: ${v}\r\n`;
    else text += `${name}: ${value}\r\n`;
  }
  return `${text}\r\n`;
}

/** Both directions, with back-pressure; either side's end or error ends the other. */
function join(upstream: Socket, device: Socket, idleMs: number, log: RequestContext['log']): void {
  upstream.setNoDelay(true);
  device.setNoDelay(true);
  upstream.setKeepAlive(true);
  device.setKeepAlive(true);
  // What a side sends is what counts (a socket's own timeout counts writes too, and writes to
  // a vanished peer still succeed into the kernel's buffer). One timer per side, refreshed.
  const silent = (side: string) => () => {
    log.info('websocket closed: peer silent', { side, idle_ms: idleMs });
    upstream.destroy();
    device.destroy();
  };
  const fromUpstream = idleMs > 0 ? setTimeout(silent('upstream'), idleMs).unref() : undefined;
  const fromDevice = idleMs > 0 ? setTimeout(silent('device'), idleMs).unref() : undefined;
  pump(upstream, device, fromUpstream);
  pump(device, upstream, fromDevice);
  // Upstream gone: the device gets what is still buffered for it, then its connection ends
  // (destroyed at once after an error). The device's close destroys upstream (tunnelUpgrade).
  upstream.on('close', (hadError: boolean) => {
    clearTimeout(fromUpstream);
    clearTimeout(fromDevice);
    hadError ? device.destroy() : device.end();
  });
}

function pump(from: Socket, to: Socket, heard: NodeJS.Timeout | undefined): void {
  from.on('data', (chunk: Buffer) => {
    heard?.refresh();
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  from.on('end', () => to.end());
}

/** Not switched: the rest of upstream's answer, then the device's connection ends. */
function finishRefused(upstream: Socket, device: Socket, all: Buffer, bodyStart: number, timeoutMs: number): void {
  device.pause();
  const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(all.toString('latin1', 0, bodyStart))?.[1];
  let left = length === undefined ? Infinity : Number(length) - (all.length - bodyStart);
  const done = () => {
    upstream.destroy();
    device.end();
  };
  if (left <= 0) {
    done();
    return;
  }
  upstream.setTimeout(timeoutMs, done);
  upstream.on('data', (chunk: Buffer) => {
    device.write(chunk);
    left -= chunk.length;
    if (left <= 0) done();
  });
  upstream.on('end', done);
}
