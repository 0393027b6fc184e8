// nginx configured to do the gateway's job, as a user would hand-configure it, for the
// comparison (peers-and-performance.md §0.6 and §2.3 for what "fair" takes):
//  - API calls: proxy_pass to the Mender server through a keep-alive upstream;
//  - artifacts: proxy_cache keyed on the store's host and path: no query string (presigned
//    URLs differ on every deployments/next) and no client scheme (HTTP and HTTPS share one
//    entry, as in the gateway's cache), proxy_cache_lock with timeout and age longer than any
//    fill (else waiters go upstream after 5 s, uncached), proxy_cache_valid, sendfile;
//  - HTTPS with ssl_protocols set explicitly; a second HTTPS server that demands a client
//    certificate (ssl_verify_client on), no session cache or tickets: every handshake is full;
//    a third, the same with session tickets and a shared session cache (resumed handshakes).
//    Both pass device API calls to the lean deployments/next stub, as the gateway
//    under test does.
// And nginx as a WebSocket reverse proxy over TLS for the connection bench (nginxWsConf).
// Pure: returns the text; nginx-process.ts writes it and runs nginx.

export interface NginxConfOptions {
  /** Directory for pid, logs, temp files and the cache. */
  prefix: string;
  workers: number;
  /** Run workers as this user (when started as root): the bench's temp dirs are 0700. */
  user?: string;
  emulatorPort: number;
  s3Port: number;
  bucket: string;
  httpPort: number;
  httpsPort: number;
  mtlsPort: number;
  /** The mTLS server with session tickets and a shared session cache. */
  mtlsResumePort: number;
  /** A plain file server for the 1 GiB artifact of the memory case (`/bucket/`, bench-origin.ts). */
  staticPort: number;
  /** Pass-through case: every path proxied to the lean deployments/next stub. */
  passPort: number;
  stubPort: number;
  serverCert: string;
  serverKey: string;
  /** CA file that signs the device certificates. */
  clientCa: string;
}

// Every fill in the bench is shorter than this (the throttled cold artifact takes ~10 s).
const LOCK_WAIT = '10m';

function locations(o: NginxConfOptions): string {
  return `
    location = /api/internal/v1/gateway/alive { return 204; }
    ${proxyLocation('/api/', 'mender')}
${cachedLocation(`/${o.bucket}/`, 's3', o.s3Port)}
${cachedLocation('/bucket/', 'static_origin', o.staticPort)}`;
}

function mtlsLocations(): string {
  return `
    location = /api/internal/v1/gateway/alive { return 204; }
    ${proxyLocation('/', 'next_stub')}`;
}

function cachedLocation(prefix: string, upstream: string, port: number): string {
  return `    location ${prefix} {
      proxy_pass http://${upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # The presigned signature covers the host the server signed for.
      proxy_set_header Host 127.0.0.1:${port};
      proxy_cache artifacts;
      proxy_cache_key $proxy_host$uri;
      proxy_cache_valid 200 1d;
      proxy_ignore_headers Cache-Control Expires Set-Cookie;
      proxy_cache_lock on;
      proxy_cache_lock_timeout ${LOCK_WAIT};
      proxy_cache_lock_age ${LOCK_WAIT};
      proxy_read_timeout ${LOCK_WAIT};
      add_header X-Cache $upstream_cache_status;
    }`;
}

/** How every bench nginx starts: in the foreground, its files under the prefix, no access log; up to the open `http {`. */
export function nginxPreamble(o: { prefix: string; user?: string; workers: number | 'auto'; descriptors?: number }): string {
  const p = o.prefix;
  return `daemon off;
master_process on;
${o.user ? `user ${o.user};\n` : ''}worker_processes ${o.workers};
${o.descriptors ? `worker_rlimit_nofile ${o.descriptors};\n` : ''}pid ${p}/nginx.pid;
error_log ${p}/error.log warn;
events { worker_connections ${o.descriptors ?? 4096}; }
http {
  access_log off;
  client_body_temp_path ${p}/tmp/body;
  proxy_temp_path ${p}/tmp/proxy;
  fastcgi_temp_path ${p}/tmp/fastcgi;
  uwsgi_temp_path ${p}/tmp/uwsgi;
  scgi_temp_path ${p}/tmp/scgi;`;
}

/** A location proxied over a keep-alive upstream, with the forwarded headers; `upgradeTimeout`:
 * a WebSocket's (Upgrade and Connection passed on, nginx.org/en/docs/http/websocket.html), with
 * that read and send timeout. */
function proxyLocation(match: string, upstream: string, upgradeTimeout?: string): string {
  const connection = upgradeTimeout
    ? `proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;`
    : 'proxy_set_header Connection "";';
  const timeouts = upgradeTimeout
    ? `
      proxy_read_timeout ${upgradeTimeout};
      proxy_send_timeout ${upgradeTimeout};`
    : '';
  return `location ${match} {
      proxy_pass http://${upstream};
      proxy_http_version 1.1;
      ${connection}
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;${timeouts}
    }`;
}

/** Keep-alive from the devices and the TLS certificate, the same in every bench nginx. */
function keepAliveAndTls(o: { serverCert: string; serverKey: string }): string {
  return `  keepalive_timeout 60s;
  keepalive_requests 1000000;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_certificate ${o.serverCert};
  ssl_certificate_key ${o.serverKey};`;
}

/** A server that demands a client certificate signed by `clientCa`; `resume`: with session tickets
 * and a shared session cache, else every handshake is full. */
function mtlsServer(port: number, clientCa: string, resume: boolean): string {
  const sessions = resume
    ? `ssl_session_cache shared:MTLS:10m;
    ssl_session_tickets on;
    ssl_session_timeout 5m;`
    : `ssl_session_cache off;
    ssl_session_tickets off;`;
  return `  server {
    listen 127.0.0.1:${port} ssl;
    ssl_verify_client on;
    ssl_client_certificate ${clientCa};
    ${sessions}
${mtlsLocations()}
  }`;
}

export function nginxConf(o: NginxConfOptions): string {
  const p = o.prefix;
  return `# generated by bench/nginx/nginx-conf.ts
${nginxPreamble({ ...o, descriptors: undefined })}
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
${keepAliveAndTls(o)}
  upstream mender { server 127.0.0.1:${o.emulatorPort}; keepalive 64; }
  upstream next_stub { server 127.0.0.1:${o.stubPort}; keepalive 64; }
  upstream s3 { server 127.0.0.1:${o.s3Port}; keepalive 64; }
  upstream static_origin { server 127.0.0.1:${o.staticPort}; keepalive 64; }
  proxy_cache_path ${p}/cache levels=1:2 keys_zone=artifacts:10m max_size=20g inactive=1d use_temp_path=off;
  server {
    listen 127.0.0.1:${o.httpPort};
${locations(o)}
  }
  server {
    listen 127.0.0.1:${o.httpsPort} ssl;
${locations(o)}
  }
  server {
    listen 127.0.0.1:${o.passPort};
    ${proxyLocation('/', 'next_stub')}
  }
${mtlsServer(o.mtlsPort, o.clientCa, false)}
${mtlsServer(o.mtlsResumePort, o.clientCa, true)}
}
`;
}

export interface NginxWsConfOptions {
  prefix: string;
  /** A number or 'auto'. */
  workers: number | 'auto';
  user?: string;
  port: number;
  upstreamPort: number;
  serverCert: string;
  serverKey: string;
  /** worker_rlimit_nofile and worker_connections. */
  descriptors: number;
}

/** The connection bench's nginx (target 5), as nginx's own guide configures a WebSocket proxy: a
 * read timeout above the ping period; deployments/next through a keep-alive upstream. Enough
 * descriptors for every device twice (device side and upstream side) plus the pollers, in each
 * worker; `reuseport` spreads the devices over the workers (the gateway's cluster primary hands
 * connections round-robin), so no worker hits its limit while another idles. */
export function nginxWsConf(o: NginxWsConfOptions): string {
  return `# generated by bench/nginx/nginx-conf.ts
${nginxPreamble(o)}
${keepAliveAndTls(o)}
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  upstream deviceconnect { server 127.0.0.1:${o.upstreamPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${o.port} ssl reuseport;
    ${proxyLocation('/api/devices/v1/deviceconnect/', 'deviceconnect', '1h')}
    ${proxyLocation('/api/', 'deviceconnect')}
  }
}
`;
}
