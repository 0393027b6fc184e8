import { generateKeyPairSync, sign } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';

// Devices as plain HTTP calls (or HTTPS, with an agent that trusts the gateway) for the
// report-journal tests: a signed auth request (the emulator auto-accepts) and device API calls
// with the device's token, bodies like the client's.

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function call(
  baseUrl: string,
  method: string,
  path: string,
  token: string | undefined,
  body?: string,
  headers: Record<string, string> = {},
  agent?: https.Agent,
): Promise<Reply> {
  const url = new URL(path, baseUrl);
  const send = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        method,
        agent: agent ?? false,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res
          .on('data', (c: Buffer) => chunks.push(c))
          .on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export interface TestDevice {
  mac: string;
  token: string;
  authenticate(): Promise<string>;
  status(deploymentId: string, status: string): Promise<Reply>;
  log(deploymentId: string, message: string): Promise<Reply>;
  inventory(attributes: Record<string, string>): Promise<Reply>;
  next(): Promise<Reply>;
}

/** agent: for an https base URL (the gateway's CA, the device's client certificate if any). */
export async function testDevice(baseUrl: () => string, mac: string, agent?: https.Agent): Promise<TestDevice> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pubkey = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const device: TestDevice = {
    mac,
    token: '',
    async authenticate() {
      const body = JSON.stringify({ id_data: JSON.stringify({ mac }), pubkey, tenant_token: '' }) + '\n';
      const signature = sign('sha256', Buffer.from(body), privateKey).toString('base64');
      const r = await call(
        baseUrl(),
        'POST',
        '/api/devices/v1/authentication/auth_requests',
        undefined,
        body,
        { 'x-men-signature': signature },
        agent,
      );
      if (r.status !== 200) throw new Error(`auth of ${mac} answered ${r.status} ${r.body}`);
      device.token = r.body.trim();
      return device.token;
    },
    status: (id, status) =>
      call(
        baseUrl(),
        'PUT',
        `/api/devices/v1/deployments/device/deployments/${id}/status`,
        device.token,
        JSON.stringify({ status }) + '\n',
        {},
        agent,
      ),
    log: (id, message) =>
      call(
        baseUrl(),
        'PUT',
        `/api/devices/v1/deployments/device/deployments/${id}/log`,
        device.token,
        JSON.stringify({ messages: [{ level: 'error', message, timestamp: new Date().toISOString() }] }) + '\n',
        {},
        agent,
      ),
    inventory: (attributes) =>
      call(
        baseUrl(),
        'PUT',
        '/api/devices/v1/inventory/device/attributes',
        device.token,
        JSON.stringify(Object.entries(attributes).map(([name, value]) => ({ name, value }))) + '\n',
        {},
        agent,
      ),
    next: () =>
      call(
        baseUrl(),
        'POST',
        '/api/devices/v1/deployments/device/deployments/next',
        device.token,
        JSON.stringify({ artifact_name: 'factory-image-0', device_type: 'test-device' }),
        {},
        agent,
      ),
  };
  await device.authenticate();
  return device;
}

export async function until(what: string, probe: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
