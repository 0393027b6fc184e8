import type { GatewayConfig } from '../config/types';

// Features.DeviceSystem (product doc §5): a device's inventory upload — a JSON array
// of {"name", "value"} — gains mender_gateway_system_id and every DefaultInventory attribute
// the device did not send itself. The device's own values always win, the system id included:
// a gateway behind this one reports its own system id and must keep it.
//
// The additions are spliced in before the closing bracket instead of re-serialising the whole
// document, so the device's bytes (number precision, key order, escapes) reach upstream as sent.

export type DeviceSystemSettings = Pick<GatewayConfig['Features']['DeviceSystem'], 'SystemID' | 'DefaultInventory'>;

export const SYSTEM_ID_ATTRIBUTE = 'mender_gateway_system_id';

export type InventoryRewrite =
  | { kind: 'rewritten'; body: Buffer; added: string[] }
  /** Valid, but the device already sent every attribute: forward the original bytes. */
  | { kind: 'unchanged' }
  /** Not an inventory document: forward the original bytes, log the reason. */
  | { kind: 'malformed'; reason: string };

export function injectInventory(body: Buffer, settings: DeviceSystemSettings): InventoryRewrite {
  const text = body.toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { kind: 'malformed', reason: `not JSON: ${(err as Error).message}` };
  }
  if (!Array.isArray(doc)) return { kind: 'malformed', reason: 'not a JSON array of attributes' };
  const sent = new Set<string>();
  for (const item of doc) {
    if (typeof item !== 'object' || item === null || Array.isArray(item) || typeof (item as { name?: unknown }).name !== 'string') {
      return { kind: 'malformed', reason: 'an attribute is not an object with a string "name"' };
    }
    sent.add((item as { name: string }).name);
  }

  const candidates = [
    { name: SYSTEM_ID_ATTRIBUTE, value: settings.SystemID as unknown },
    ...settings.DefaultInventory.map((i) => ({ name: i.Name, value: i.Value as unknown })),
  ];
  const additions: { name: string; value: unknown }[] = [];
  for (const c of candidates) {
    if (sent.has(c.name)) continue;
    sent.add(c.name); // the first configured value of a name wins over a repeat
    additions.push(c);
  }
  if (additions.length === 0) return { kind: 'unchanged' };

  const close = text.lastIndexOf(']');
  const added = additions.map((a) => JSON.stringify(a)).join(',');
  const spliced = text.slice(0, close) + (doc.length > 0 ? ',' : '') + added + text.slice(close);
  return { kind: 'rewritten', body: Buffer.from(spliced, 'utf8'), added: additions.map((a) => a.name) };
}
