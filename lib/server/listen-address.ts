// "host:port" as the product writes it (Go's net.Listen): ":443" means every interface,
// "127.0.0.1:8080", "[::1]:8443".

export interface ListenAddress {
  host: string | undefined;
  port: number;
}

export function parseListen(listen: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(listen.trim());
  if (!m) throw new Error(`must be host:port, got ${JSON.stringify(listen)}`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`port out of range, got ${JSON.stringify(listen)}`);
  const host = m[1] ?? m[2];
  return { host: host === '' ? undefined : host, port };
}

export function formatAddress(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
