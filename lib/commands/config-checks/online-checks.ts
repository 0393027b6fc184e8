// check-config --online: what only the network can tell. Each check is bounded (5 s) and
// reports one line; none ever prints a password, token or signed URL.

import http from 'node:http';
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { createUpstream, type Upstream } from '../../proxy/upstream';
import { managementCall } from '../../mtls/management-call';
import { LOGIN_PATH } from '../../mtls/management-session';
import { bucketRequest, s3ErrorCode } from '../../cache/shared/s3-request';
import { createPresigner } from '../../cache/shared/s3-presigner';
import type { GatewayConfig } from '../../config/types';

export const ONLINE_TIMEOUT_MS = 5_000;

export interface OnlineResult {
  key: string;
  what: string;
  ok: boolean;
  line: string;
}

function withTimeout<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ONLINE_TIMEOUT_MS / 1000} s`)), ONLINE_TIMEOUT_MS);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** TLS failures named as such: an operator fixes those in UpstreamServer.CACertificate. */
function networkText(err: NodeJS.ErrnoException): string {
  const code = err.code ?? '';
  const tls = /CERT|SELF_SIGNED|ALTNAME|TLS|SSL|EPROTO|UNABLE_TO/.test(code);
  return `${tls ? 'TLS error' : 'unreachable'}: ${err.message}${code && !err.message.includes(code) ? ` (${code})` : ''}`;
}

function headRoot(upstream: Upstream): Promise<number> {
  const target = upstream.target;
  const request = target.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        protocol: target.protocol,
        hostname: target.hostname.replace(/^\[|\]$/g, ''),
        port: target.port,
        method: 'HEAD',
        path: '/',
        agent: upstream.agent,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.setTimeout(ONLINE_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${ONLINE_TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
    req.end();
  });
}

async function checkUpstream(upstream: Upstream): Promise<OnlineResult> {
  const base = { key: 'UpstreamServer.URL', what: `upstream ${upstream.target.origin}` };
  try {
    const status = await withTimeout(headRoot(upstream), 'upstream');
    // Any HTTP answer means DNS, TCP and TLS all worked.
    return { ...base, ok: true, line: `reachable (HTTP ${status})` };
  } catch (err) {
    return { ...base, ok: false, line: networkText(err as NodeJS.ErrnoException) };
  }
}

async function checkLogin(upstream: Upstream, mtls: GatewayConfig['Features']['mTLS']): Promise<OnlineResult> {
  const base = { key: 'Features.mTLS.MenderUsername', what: `management login as ${mtls.MenderUsername}` };
  const basic = Buffer.from(`${mtls.MenderUsername}:${mtls.MenderPassword}`).toString('base64');
  try {
    const reply = await withTimeout(
      managementCall(upstream, {
        method: 'POST',
        path: LOGIN_PATH,
        headers: { Authorization: `Basic ${basic}`, Accept: 'application/jwt' },
      }),
      'login',
    );
    // The token is dropped unread: only whether one came back matters here.
    if (reply.status === 200) return { ...base, ok: true, line: 'login OK' };
    const hint = reply.status === 401 ? ': check Features.mTLS.MenderUsername and MenderPassword' : '';
    return { ...base, ok: false, line: `login failed: status ${reply.status}${hint}` };
  } catch (err) {
    return { ...base, ok: false, line: `login failed: ${(err as Error).message}` };
  }
}

async function checkBucket(s3: NonNullable<GatewayConfig['Features']['ArtifactsProxy']['ArtifactsCache']['S3']>): Promise<OnlineResult> {
  const base = {
    key: 'Features.ArtifactsProxy.ArtifactsCache.S3.Bucket',
    what: `S3 bucket ${s3.Endpoint.replace(/\/$/, '')}/${s3.Bucket}`,
  };
  try {
    const presigner = createPresigner(s3);
    // A GET of a key that cannot exist: NoSuchKey proves bucket and credentials, and unlike
    // a HEAD the answer carries S3's error code (NoSuchBucket, AccessDenied, ...).
    const url = await presigner.url('GET', `${s3.Prefix}v1/check-config-${randomBytes(6).toString('hex')}`, 300);
    const answer = await withTimeout(bucketRequest(url, { method: 'GET', timeoutMs: ONLINE_TIMEOUT_MS }), 'bucket');
    const code = s3ErrorCode(answer);
    if (answer.status === 404 && code === 'NoSuchKey') return { ...base, ok: true, line: 'reachable, bucket exists, credentials accepted' };
    return { ...base, ok: false, line: `answered ${answer.status} ${code}` };
  } catch (err) {
    return { ...base, ok: false, line: (err as Error).message };
  }
}

export async function runOnlineChecks(config: Readonly<GatewayConfig>, env: NodeJS.ProcessEnv): Promise<OnlineResult[]> {
  const results: OnlineResult[] = [];
  let upstream: Upstream | undefined;
  try {
    upstream = createUpstream(config.UpstreamServer, env);
  } catch (err) {
    results.push({ key: 'UpstreamServer', what: 'upstream', ok: false, line: (err as Error).message });
  }
  try {
    if (upstream) {
      // Our own bound, not UpstreamServer.Timeout (which may be minutes).
      const bounded = Object.create(upstream, { timeoutMs: { value: ONLINE_TIMEOUT_MS } }) as Upstream;
      results.push(await checkUpstream(bounded));
      const mtls = config.Features.mTLS;
      if (mtls.Enabled) results.push(await checkLogin(bounded, mtls));
    }
    const cache = config.Features.ArtifactsProxy.ArtifactsCache;
    if (config.Features.ArtifactsProxy.Enabled && cache.Enabled && cache.S3?.Enabled) results.push(await checkBucket(cache.S3));
  } finally {
    upstream?.close();
  }
  return results;
}
