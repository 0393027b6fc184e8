import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { TLSSocket } from 'node:tls';

// A scripted device speaking the 3.4 client's auth request (device-protocol.md §3.1): body as
// Go's json.Encoder writes it (field order, trailing newline), X-MEN-Signature over the exact
// bytes, over TLS with or without a client certificate.

export interface AuthBody {
  raw: Buffer;
  signature: string;
}

/** The auth request body and its signature, for `identity`, signed by `authKeyFile` (a PEM private key). */
export function signedAuthBody(identity: Record<string, string>, authKeyFile: string): AuthBody {
  return authBodySignedBy(identity, createPrivateKey(readFileSync(authKeyFile)));
}

/** The same for a key held in memory (a device made on the fly, with no key file). */
export function authBodySignedBy(identity: Record<string, string>, key: KeyObject): AuthBody {
  const pubkey = createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
  const raw = Buffer.from(JSON.stringify({ id_data: JSON.stringify(identity), tenant_token: '', pubkey }) + '\n');
  return { raw, signature: signatureOf(raw, key) };
}

export function signatureOf(raw: Buffer, key: KeyObject): string {
  return sign(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', raw, key).toString('base64');
}

export interface DeviceTls {
  ca: string; // file the device trusts for the gateway
  cert?: string; // client certificate (or chain) file
  key?: string;
}

export interface DeviceReply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
  sessionReused: boolean;
}

export function tlsAgent(tls: DeviceTls, options: https.AgentOptions = {}): https.Agent {
  return new https.Agent({
    ca: readFileSync(tls.ca),
    ...(tls.cert ? { cert: readFileSync(tls.cert) } : {}),
    ...(tls.key ? { key: readFileSync(tls.key) } : {}),
    keepAlive: false,
    ...options,
  });
}

/** POST an auth request (or any body) to the gateway, or to the emulator (an http: URL with an
 * http.Agent); resolves with the answer, rejects on a TLS/connection failure. */
export function postAuth(
  url: string,
  agent: http.Agent,
  body: AuthBody | { raw: Buffer; signature?: string },
  options: { chunked?: boolean; path?: string; headers?: Record<string, string> } = {},
): Promise<DeviceReply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'Content-Type': 'application/json', Authorization: 'Bearer', ...options.headers };
    if (body.signature !== undefined) headers['X-MEN-Signature'] = body.signature;
    if (!options.chunked) headers['Content-Length'] = String(body.raw.length);
    const target = `${url}${options.path ?? '/api/devices/v1/authentication/auth_requests'}`;
    const req = (target.startsWith('https:') ? https : http).request(target, { method: 'POST', agent, headers }, (res) => {
      const sessionReused = res.socket instanceof TLSSocket && res.socket.isSessionReused();
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers, sessionReused }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.chunked) {
      // Two writes without Content-Length: chunked framing.
      req.write(body.raw.subarray(0, 10));
      req.end(body.raw.subarray(10));
    } else req.end(body.raw);
  });
}

/** The public key (SPKI PEM) of a PEM private key file: what an auth request carries. */
export function publicKeyPem(keyFile: string): string {
  return createPublicKey(readFileSync(keyFile)).export({ type: 'spki', format: 'pem' }).toString();
}

/** An answer for an assertion message: a device token (what an attack gets when it works) is not printed. */
export function withoutTokens(body: string): string {
  return body.replace(/eyJ[\w-]+\.[\w-]+\.[\w-]*/g, '<device JWT>');
}
