import http from 'node:http';
import net from 'node:net';

/** An outbound HTTP proxy that only tunnels (CONNECT), recording each tunnel's target and Proxy-Authorization. */
export function connectProxy(): { server: http.Server; tunnels: string[] } {
  const tunnels: string[] = [];
  const server = http.createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    tunnels.push(`${req.url} ${req.headers['proxy-authorization'] ?? ''}`.trim());
    const [host, port] = (req.url ?? '').split(':');
    const upstream = net.connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client).pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    // Upstream gone: pipe() has unpiped and paused the client, which would then never read the
    // gateway's FIN and hold the proxy's close (a TLS tunnel closed by upstream showed it).
    upstream.on('close', () => client.resume());
    client.on('error', () => upstream.destroy());
  });
  return { server, tunnels };
}
