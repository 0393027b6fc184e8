import { isIPv4 } from 'node:net';
import { parseListen } from './listen-address';

// Whether a peer or a listen address is this host's loopback: 127.0.0.0/8, ::1, and
// 127.x written as an IPv4-mapped IPv6 address (a dual-stack listener reports it so). Decided
// from the socket's own address, never from a header a client could send.

export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = address.toLowerCase();
  if (a === '::1' || a === '0:0:0:0:0:0:0:1') return true;
  const v4 = a.startsWith('::ffff:') ? a.slice('::ffff:'.length) : a;
  return isIPv4(v4) && v4.startsWith('127.');
}

/** A "host:port" setting that binds loopback only; ":port", 0.0.0.0, :: and any other host do not. */
export function isLoopbackListen(listen: string): boolean {
  let host: string | undefined;
  try {
    ({ host } = parseListen(listen));
  } catch {
    return false;
  }
  return host !== undefined && (host.toLowerCase() === 'localhost' || isLoopbackAddress(host));
}
