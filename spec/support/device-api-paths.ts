// The Mender API paths the tests call, named once (device-protocol.md; the emulator's routes).

export const ALIVE = '/api/internal/v1/gateway/alive';
export const AUTH = '/api/devices/v1/authentication/auth_requests';
export const NEXT = '/api/devices/v1/deployments/device/deployments/next';
export const NEXT_V2 = '/api/devices/v2/deployments/device/deployments/next';
export const INVENTORY = '/api/devices/v1/inventory/device/attributes';
export const CONNECT = '/api/devices/v1/deviceconnect/connect';
export const LOGIN = '/api/management/v1/useradm/auth/login';
export const PREAUTH = '/api/management/v2/devauth/devices';
