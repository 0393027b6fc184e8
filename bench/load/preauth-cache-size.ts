import { createHash } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PreauthorizationCache } from '../../lib/mtls/preauthorization-cache';

// Heap bytes per entry of the mTLS preauthorization cache (the only admission state kept per
// device beyond a connection's life): `count` keys as the gateway makes them (SHA-256
// hex of identity and key), heap after a full GC before and after. Output: one JSON line.

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const count = Number(process.argv[2] ?? 1000);
const key = (i: number) => createHash('sha256').update(`{"mac":"02:00:00:00:${i}"}\0key-${i}`).digest('hex');
const cache = new PreauthorizationCache(3600_000);
key(0); // the hash machinery's own first-use allocations stay out of the count
gc();
const before = process.memoryUsage().heapUsed;
for (let i = 0; i < count; i++) cache.add(key(i));
gc();
const after = process.memoryUsage().heapUsed;
process.stdout.write(`${JSON.stringify({ entries: cache.size, bytesPerEntry: (after - before) / count })}\n`);
