import { createPublicKey, type KeyObject } from 'node:crypto';
import { sameKey } from './auth-request';

// What deviceauth already holds for an identity, read from its management API (a 409 to a
// preauthorization names the device; GET …/devices/{id} lists its auth sets), and what that
// means for a device asking to be admitted with `key`. Pure: parsing and judging only.

export interface HeldAuthSet {
  pubkey: string;
  status: string;
}

/**
 * - `admitted`: this key is already accepted or preauthorized; nothing to force.
 * - `unclaimed`: no other key holds the identity (none, or only pending ones): forcing this key
 *   takes nothing from anybody.
 * - `rejected`: the operator rejected this very key.
 * - `held`: another key is accepted, preauthorized or rejected for this identity.
 */
export type Holding = 'admitted' | 'unclaimed' | 'rejected' | 'held';

/** Statuses by which a key holds an identity: a rejected key holds it too (the operator's verdict stands). */
const HOLDING = new Set(['accepted', 'preauthorized', 'rejected']);

export function judgeHolding(key: KeyObject, sets: readonly HeldAuthSet[]): Holding {
  const own = sets.filter((s) => isKey(s.pubkey, key));
  if (own.some((s) => s.status === 'rejected')) return 'rejected';
  if (own.some((s) => s.status === 'accepted' || s.status === 'preauthorized')) return 'admitted';
  return sets.some((s) => !own.includes(s) && HOLDING.has(s.status)) ? 'held' : 'unclaimed';
}

function isKey(pem: string, key: KeyObject): boolean {
  try {
    return sameKey(createPublicKey(pem), key);
  } catch {
    return false; // a key we cannot read is somebody else's
  }
}

/** The device id of a deviceauth Device record (the 409 body, or GET …/devices/{id}); undefined when absent. */
export function deviceIdOf(body: Buffer): string | undefined {
  const record = parseObject(body);
  return typeof record?.id === 'string' && record.id !== '' ? record.id : undefined;
}

/** The auth sets of a Device record; undefined when the body is not one. */
export function authSetsOf(body: Buffer): HeldAuthSet[] | undefined {
  const record = parseObject(body);
  if (!record || !Array.isArray(record.auth_sets)) return undefined;
  const sets: HeldAuthSet[] = [];
  for (const s of record.auth_sets as unknown[]) {
    const { pubkey, status } = (s ?? {}) as { pubkey?: unknown; status?: unknown };
    if (typeof pubkey !== 'string' || typeof status !== 'string') return undefined;
    sets.push({ pubkey, status });
  }
  return sets;
}

function parseObject(body: Buffer): Record<string, unknown> | undefined {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as unknown;
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
