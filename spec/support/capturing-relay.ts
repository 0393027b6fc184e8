import net from 'node:net';
import { closeServer, listenOnFreePort } from './listen';

// A TCP relay in front of a plain-HTTP listener that records the head of the first request and
// response on each connection (what the device asked, what it was answered) and can cut one
// response mid-body: the capture behind a resume test, without a packet capture.

export interface RelayedExchange {
  request: string;
  response: string;
  /** Bytes the relay passed from the target to the device on this connection. */
  bytesToDevice: number;
  cut: boolean;
}

export interface CapturingRelay {
  port: number;
  exchanges: RelayedExchange[];
  /** Cut the next connection that carries more than `bytes` towards the device. */
  cutNextAfter(bytes: number): void;
  /** true while a cut is armed and has not happened yet. */
  armed(): boolean;
  close(): Promise<void>;
}

const headOf = (data: Buffer): string => {
  const text = data.subarray(0, 8192).toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  return end < 0 ? text : text.slice(0, end);
};

export async function startCapturingRelay(targetPort: () => number): Promise<CapturingRelay> {
  let cutAfter = 0;
  const sockets = new Set<net.Socket>();
  const exchanges: RelayedExchange[] = [];
  const server = net.createServer((device) => {
    const target = net.connect(targetPort(), '127.0.0.1');
    sockets.add(device).add(target);
    const exchange: RelayedExchange = { request: '', response: '', bytesToDevice: 0, cut: false };
    exchanges.push(exchange);
    device.on('data', (chunk: Buffer) => {
      if (!exchange.request) exchange.request = headOf(chunk);
      target.write(chunk);
    });
    target.on('data', (chunk: Buffer) => {
      if (!exchange.response) exchange.response = headOf(chunk);
      exchange.bytesToDevice += chunk.length;
      if (cutAfter > 0 && exchange.bytesToDevice > cutAfter) {
        cutAfter = 0;
        exchange.cut = true;
        device.destroy();
        target.destroy();
        return;
      }
      device.write(chunk);
    });
    device.on('end', () => target.end());
    target.on('end', () => device.end());
    for (const s of [device, target]) {
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        device.destroy();
        target.destroy();
      });
    }
  });
  const port = await listenOnFreePort(server);
  return {
    port,
    exchanges,
    cutNextAfter(bytes) {
      cutAfter = bytes;
    },
    armed: () => cutAfter > 0,
    async close() {
      for (const s of sockets) s.destroy();
      await closeServer(server);
    },
  };
}

/** A header's value in a recorded head, or undefined. */
export function headerOf(head: string, name: string): string | undefined {
  const m = new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(head);
  return m?.[1]?.trim();
}
