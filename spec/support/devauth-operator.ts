// The operator at the Mender server's UI, through its management API (device-protocol.md §8):
// log in, read a device's auth sets, accept or reject one. Tests act on the emulator as a
// person would, and read back what it holds.

export interface OperatorAuthSet {
  id: string;
  pubkey: string;
  status: string;
}

export interface OperatorDevice {
  id: string;
  status: string;
  auth_sets: OperatorAuthSet[];
}

export interface Operator {
  device(id: string): Promise<OperatorDevice>;
  /** PUT …/devices/{id}/auth/{aid}/status; resolves with the HTTP status (204 when done). */
  setStatus(deviceId: string, authSetId: string, status: 'accepted' | 'rejected' | 'pending'): Promise<number>;
}

const DEVICES = '/api/management/v2/devauth/devices';

export async function loginOperator(serverUrl: string, user: { email: string; password: string }): Promise<Operator> {
  const login = await fetch(`${serverUrl}/api/management/v1/useradm/auth/login`, {
    method: 'POST',
    headers: { Authorization: `Basic ${Buffer.from(`${user.email}:${user.password}`).toString('base64')}` },
  });
  if (login.status !== 200) throw new Error(`operator login: status ${login.status}`);
  const auth = { Authorization: `Bearer ${(await login.text()).trim()}` };
  return {
    async device(id) {
      const reply = await fetch(`${serverUrl}${DEVICES}/${id}`, { headers: auth });
      if (reply.status !== 200) throw new Error(`GET device ${id}: status ${reply.status}`);
      return (await reply.json()) as OperatorDevice;
    },
    async setStatus(deviceId, authSetId, status) {
      const reply = await fetch(`${serverUrl}${DEVICES}/${deviceId}/auth/${authSetId}/status`, {
        method: 'PUT',
        headers: { ...auth, 'Content-Type': 'application/json' },
        body: JSON.stringify({ status }),
      });
      await reply.arrayBuffer();
      return reply.status;
    },
  };
}
