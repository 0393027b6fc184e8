import type { Logger } from '../observe/log';
import { readFileBytes, watchLoadedFile, type Loaded } from '../server/watched-file';

// Features.mTLS.BlacklistPath: client certificate serial numbers that are refused.
// The product documents only "a new-line separated list of hexadecimal serial numbers", so
// we accept what operators paste from openssl or Node: any case, `0x`, colons, leading zeros.

/** A serial in canonical form (upper-case hex, no `0x`, no colons, no leading zeros), or null. */
export function normaliseSerial(text: string): string | null {
  let s = text.trim().replace(/[:\s]/g, '');
  if (/^0x/i.test(s)) s = s.slice(2);
  if (!/^[0-9a-f]+$/i.test(s)) return null;
  s = s.replace(/^0+/, '').toUpperCase();
  return s === '' ? '0' : s;
}

export type ParsedBlocklist = { ok: true; serials: Set<string> } | { ok: false; error: string };

/** Blank lines and `#` comments are ignored; one bad line makes the whole file bad. */
export function parseBlocklist(text: string): ParsedBlocklist {
  const serials = new Set<string>();
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const serial = normaliseSerial(line);
    if (serial === null)
      return { ok: false, error: `line ${index + 1}: not a hexadecimal serial number: ${JSON.stringify(raw.trim().slice(0, 80))}` };
    serials.add(serial);
  }
  return { ok: true, serials };
}

export interface SerialBlocklist {
  has(serial: string): boolean;
  readonly size: number;
  close(): void;
}

/**
 * Load the blocklist and reload it whenever the file changes. A missing or broken file at
 * start is an error; later, a broken or vanished file keeps the last good list (and says why).
 * `onReload` runs after every successful reload (the caller rotates TLS session ticket keys).
 */
export function watchSerialBlocklist(path: string, log: Logger, onReload: (size: number) => void, pollMs?: number): SerialBlocklist {
  let serials = new Set<string>();
  const file = watchLoadedFile(
    'Features.mTLS.BlacklistPath',
    path,
    load,
    {
      onLoad(next, initial) {
        serials = next;
        log.info(initial ? 'client certificate blocklist loaded' : 'client certificate blocklist reloaded', {
          path,
          serials: serials.size,
        });
        if (!initial) onReload(serials.size);
      },
      onBad(reason) {
        log.error('client certificate blocklist not reloaded, keeping the last good list', { path, reason, serials: serials.size });
      },
    },
    pollMs,
  );

  return {
    has: (serial) => serials.has(normaliseSerial(serial) ?? serial),
    get size() {
      return serials.size;
    },
    close: () => file.close(),
  };
}

function load(path: string): Loaded<Set<string>> {
  const read = readFileBytes(path);
  if (!read.ok) return read;
  const parsed = parseBlocklist(read.value.toString('utf8'));
  return parsed.ok ? { ok: true, value: parsed.serials } : parsed;
}
