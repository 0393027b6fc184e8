import { spawnSync } from 'node:child_process';
import { randomUUID, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { authKeyOf, IssuedTokens, MAX_ISSUED_TOKENS } from '../lib/journal/issued-tokens';
import { connectRemoteDesk } from '../lib/journal/journal-ipc';
import type { JournalSlice } from '../lib/journal/journal-owner';
import { encodeRecord, JOURNAL_FILE } from '../lib/journal/journal-file';
import { claimsSeenSize, issuedVerdict, KnownTokens, MAX_KNOWN_TOKENS, tokenHash } from '../lib/journal/known-tokens';
import { MAX_JOURNAL_DEVICES, ReportJournal } from '../lib/journal/report-journal';
import { LATEST_AUTH_DEVICES, ReportReplay } from '../lib/journal/report-replay';
import { createLogger } from '../lib/observe/log';
import type { Upstream } from '../lib/proxy/upstream';
import { BoundedMap } from '../lib/state/bounded-map';
import { deviceClaims } from '../fixtures/mender-server/jwt';
import type { StateCase } from './state-case';
import { EDGE_CASES } from './state-cases-edge';

// The bytes each bounded map holds at its cap (docs/operations.md, "Bounded state"). One line per
// map: its cap, its age, bytes per entry, bytes at the cap. Each case runs in a child process of
// its own (`node --expose-gc`): heapUsed after a full GC before the map is filled to its cap
// with realistic keys and values (a device id like a UUID, a 64-hex hash, a ~900-byte JWT), and
// after; the difference divided by the entries. Add a map: one entry in CASES.
//
//   make state-sizes                     every case
//   node --expose-gc dist/bench/state-sizes.js <name>   one case, in this process (JSON line)

/** ReportJournal.MaxAge's default */
const MAX_AGE_MS = 168 * 3_600_000;
const quiet = createLogger({ level: 'error', sink: { write: () => true } });
const DAY_S = 86_400;

/**
 * A string as the gateway gets one (parsed from a header or JSON: flat). randomUUID() and a
 * template literal give a tree of pieces, several times the size.
 */
const flat = (s: string): string => Buffer.from(s).toString('latin1');
const deviceId = (): string => flat(randomUUID());

/**
 * A device token as a Mender server issues it (RS256, ~900 characters): the emulator's claims, a
 * hosted tenant's on top, and a signature of the right length (signing 20,000 would take 20 s).
 */
function jwt(device: string): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const claims = { ...deviceClaims(deviceId(), device, now, 7 * DAY_S), 'mender.tenant': randomBytes(12).toString('hex'), scp: 'mender.*' };
  return flat(`${b64({ alg: 'RS256', typ: 'JWT' })}.${b64(claims)}.${randomBytes(256).toString('base64url')}`);
}

/** The replay with a journal in which every device has a report waiting (the maps' condition). */
function replayOf(deviceOfToken: () => string | undefined): ReportReplay {
  const journal = {
    maxAgeMs: MAX_AGE_MS,
    maxDevices: MAX_JOURNAL_DEVICES,
    pendingOf: () => [{}],
  } as unknown as ReportJournal;
  return new ReportReplay(journal, {} as Upstream, quiet, { deviceOf: deviceOfToken } as unknown as KnownTokens);
}

const MAX_AGE = '168h (MaxAge)';

export const CASES: StateCase[] = [
  {
    name: 'journal replay latestAuth',
    cap: LATEST_AUTH_DEVICES,
    age: MAX_AGE,
    fill(n) {
      let device = '';
      const replay = replayOf(() => device);
      for (let i = 0; i < n; i++) {
        device = deviceId();
        replay.noteAuthorization(device, flat(`Bearer ${jwt(device)}`));
      }
      return replay;
    },
  },
  {
    // Its value is the refused token, the very string a journaled report holds: not its own bytes.
    name: 'journal replay blocked',
    cap: MAX_JOURNAL_DEVICES,
    age: MAX_AGE,
    prepare: (n) => Array.from({ length: n }, () => flat(`Bearer ${jwt(deviceId())}`)),
    fill(n, prepared) {
      const tokens = prepared as string[];
      const map = new BoundedMap<string, string>({ maxEntries: n, maxAgeMs: MAX_AGE_MS });
      for (let i = 0; i < n; i++) map.set(deviceId(), tokens[i]!);
      return map;
    },
  },
  {
    name: 'journal replay deferred',
    cap: MAX_JOURNAL_DEVICES,
    age: MAX_AGE,
    fill(n) {
      const map = new BoundedMap<string, { until: number; waitMs: number }>({ maxEntries: n, maxAgeMs: MAX_AGE_MS });
      for (let i = 0; i < n; i++) map.set(deviceId(), { until: Date.now() + 5_000 + i, waitMs: 5_000 });
      return map;
    },
  },
  {
    name: 'journal queues (a status report per device)',
    cap: MAX_JOURNAL_DEVICES,
    age: MAX_AGE,
    prepare(n) {
      const dir = join(mkdtempSync(join(tmpdir(), 'state-sizes-')), 'journal');
      mkdirSync(dir, { mode: 0o700 });
      const records: Buffer[] = [];
      for (let i = 0; i < n; i++) {
        const device = deviceId();
        const entry = {
          seq: i + 1,
          at: Date.now(),
          device,
          trusted: true,
          kind: 'status' as const,
          method: 'PUT',
          path: `/api/devices/v1/deployments/device/deployments/${deviceId()}/status`,
          headers: { authorization: `Bearer ${jwt(device)}`, 'content-type': 'application/json', 'user-agent': 'Go-http-client/1.1' },
          body: Buffer.from('{"status":"installing"}'),
        };
        records.push(encodeRecord({ t: 'add', entry }));
      }
      writeFileSync(join(dir, JOURNAL_FILE), Buffer.concat(records), { mode: 0o600 });
      return dir;
    },
    async fill(_n, prepared) {
      const dir = prepared as string;
      const journal = await ReportJournal.open({ dir, maxBytes: 1 << 30, maxAgeMs: MAX_AGE_MS, log: quiet });
      await journal.close();
      rmSync(join(dir, '..'), { recursive: true, force: true });
      return journal;
    },
  },
  {
    // One token per device: the worst case (a device's set of its own); three per device share one.
    name: 'known-good tokens (entries + byDevice)',
    cap: MAX_KNOWN_TOKENS,
    age: "the token's exp",
    fill(n) {
      const known = new KnownTokens(undefined, quiet);
      const expiresAt = Date.now() + 7 * DAY_S * 1000;
      for (let i = 0; i < n; i++)
        known.apply({ t: 'accepted', hash: tokenHash(randomBytes(32).toString('hex')), device: deviceId(), expiresAt });
      if (known.size !== n || known.devices !== n) throw new Error(`known tokens hold ${known.size} of ${known.devices} devices, not ${n}`);
      return known;
    },
  },
  {
    name: 'token claims memo (claimsSeen)',
    cap: 4_096,
    age: '2h since last use',
    fill(n) {
      for (let i = 0; i < n; i++) issuedVerdict(jwt(deviceId()));
      if (claimsSeenSize() !== n) throw new Error(`claims memo holds ${claimsSeenSize()}, not ${n}`);
      return undefined;
    },
  },
  {
    name: 'issued tokens (outage auth)',
    cap: MAX_ISSUED_TOKENS,
    age: "the token's exp",
    fill(n) {
      const tokens = new IssuedTokens(n);
      for (let i = 0; i < n; i++) {
        const key = authKeyOf(`{"mac":"02:00:${randomBytes(4).toString('hex')}"}`, randomBytes(400).toString('base64'));
        tokens.remember(key, Buffer.from(jwt(deviceId())), 'application/jwt');
      }
      return tokens;
    },
  },
  {
    name: 'worker sent verdicts',
    cap: 4_096,
    age: '60s since sent',
    async fill(n) {
      const channel = {
        send(message: { type: string }, _h?: unknown, _o?: unknown, done?: (err: Error | null) => void): boolean {
          if (message.type === 'journal-open') setImmediate(() => onMessage?.({ type: 'journal-opened' }));
          done?.(null);
          return true;
        },
        on(event: string, fn: (m: unknown) => void) {
          if (event === 'message') onMessage = fn;
          return channel;
        },
        off: () => channel,
      };
      let onMessage: ((m: unknown) => void) | undefined;
      const desk = await connectRemoteDesk({} as JournalSlice, channel as unknown as Parameters<typeof connectRemoteDesk>[1]);
      const expiresAt = Date.now() + 7 * DAY_S * 1000;
      for (let i = 0; i < n; i++)
        desk.noteToken({ t: 'accepted', hash: tokenHash(randomBytes(32).toString('hex')), device: deviceId(), expiresAt });
      return desk;
    },
  },
];

interface Measured {
  name: string;
  entries: number;
  bytes: number;
}

/** What a case filled, alive until the process ends. */
const kept: unknown[] = [];

/** V8's heap and Buffers' memory outside it (an issued token is a Buffer of its own). */
function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('state-sizes: run with node --expose-gc');
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
}

/** The journal's maps (above) and the others (state-cases-edge.ts). */
const ALL: StateCase[] = [...CASES, ...EDGE_CASES];

async function measure(c: StateCase): Promise<Measured> {
  const prepared = c.prepare?.(c.cap);
  const before = heapAfterGc();
  kept.push(prepared, await c.fill(c.cap, prepared));
  const after = heapAfterGc();
  return { name: c.name, entries: c.cap, bytes: after - before };
}

async function main(): Promise<void> {
  const only = process.argv[2];
  if (only !== undefined) {
    const c = ALL.find((x) => x.name === only);
    if (!c) throw new Error(`state-sizes: no case ${JSON.stringify(only)}`);
    process.stdout.write(`${JSON.stringify(await measure(c))}\n`);
    return;
  }
  const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
  process.stdout.write('| map | cap | age | bytes/entry | MB at cap |\n|---|---|---|---|---|\n');
  for (const c of ALL) {
    const child = spawnSync(process.execPath, ['--expose-gc', __filename, c.name], { encoding: 'utf8' });
    if (child.status !== 0) throw new Error(`state-sizes: ${c.name} failed\n${child.stderr}`);
    const m = JSON.parse(child.stdout.trim().split('\n').pop()!) as Measured;
    process.stdout.write(
      `| ${c.name} | ${c.cap.toLocaleString('en')} | ${c.age} | ${Math.round(m.bytes / m.entries)} | ${mb(m.bytes)} |\n`,
    );
  }
}

if (require.main === module)
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
