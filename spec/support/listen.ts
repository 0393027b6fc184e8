import { createServer, type AddressInfo, type Server } from 'node:net';

/** Listen on 127.0.0.1 (or the given host) on a port the kernel picks; resolves to that port. */
export async function listenOnFreePort(server: Server, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** Close a server and every connection it still holds. */
export async function closeServer(server: Server & { closeAllConnections?: () => void }): Promise<void> {
  if (!server.listening) return;
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

/** A port nobody listens on right now (the kernel's pick, released again): for a peer that starts
 * later, or a configuration file (nginx's) that needs a number. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  const port = await listenOnFreePort(server, host);
  await closeServer(server);
  return port;
}
