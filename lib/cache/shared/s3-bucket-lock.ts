import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Bucket } from './s3-bucket';
import { BucketUnreachable, s3ErrorCode } from './s3-request';

// Cross-gateway single flight: the gateway that creates the lock object for an
// entry downloads it from the origin; the others wait for the bucket copy. The lock is a
// conditional write (`If-None-Match: *`: AWS S3 since 2024, MinIO, Ceph RGW answer 412 when
// the object exists, and at most one of two racing PUTs succeeds). Its record carries a lease
// the holder renews; a lock past its lease plus a grace period is a dead gateway's and is
// deleted, then raced for again.
//
// A server that ignores the condition (s3rver, some older gateways) is detected once by a
// probe; there a lock is taken by read → write → settle → read back, and two gateways fill
// from the origin only when one's write lands more than `settleMs` after the other's read.

export interface LockTiming {
  leaseMs: number;
  /** Only for servers without conditional writes: how long a written lock must survive. */
  settleMs: number;
}

interface LockRecord {
  owner: string;
  expires: number;
}

export interface BucketLock {
  release(): Promise<void>;
}

const OWNER_BASE = `${hostname()}/${process.pid}`;

export class BucketLocks {
  private conditional: Promise<boolean> | undefined;

  constructor(
    private readonly bucket: Bucket,
    private readonly timing: LockTiming,
    private readonly onNoConditionalWrites: () => void,
  ) {}

  /** The lock, 'held' by a live holder, or 'retry' (it just went away: look again at once). */
  async tryTake(id: string): Promise<BucketLock | 'held' | 'retry'> {
    const key = this.bucket.lockKey(id);
    const owner = `${OWNER_BASE}/${randomBytes(6).toString('hex')}`;
    if (!(await this.conditionalWrites())) return this.takeBySettling(key, owner);
    const put = await this.write(key, owner, true);
    if (put.status === 200) return this.held(key, owner);
    if (put.status !== 412 && put.status !== 409) throw unexpected('lock PUT', put);
    return this.checkHolder(key, owner);
  }

  /** Whether the server refuses a conditional PUT on an existing object (asked once). */
  conditionalWrites(): Promise<boolean> {
    this.conditional ??= this.probe().catch((err) => {
      this.conditional = undefined; // unreachable now: ask again next time
      throw err;
    });
    return this.conditional;
  }

  private async probe(): Promise<boolean> {
    const key = this.bucket.lockKey(`probe-${randomBytes(8).toString('hex')}`);
    try {
      const first = await this.write(key, 'probe', true);
      if (first.status !== 200) throw unexpected('conditional-write probe', first);
      const second = await this.write(key, 'probe', true);
      if (second.status === 412 || second.status === 409) return true;
      this.onNoConditionalWrites();
      return false;
    } finally {
      await this.bucket.send('DELETE', key).catch(() => undefined);
    }
  }

  private async takeBySettling(key: string, owner: string): Promise<BucketLock | 'held' | 'retry'> {
    const before = await this.checkHolder(key);
    if (before !== 'retry') return 'held';
    const put = await this.write(key, owner, false);
    if (put.status !== 200) throw unexpected('lock PUT', put);
    await sleep(this.timing.settleMs);
    const now = await this.read(key);
    if (now?.owner === owner) return this.held(key, owner);
    return 'held';
  }

  /**
   * 'held' while a live holder's lease runs; a dead holder's lock is removed ('retry'). Our own
   * record (`owner`: a lock PUT that landed, then was sent again after a reset) is ours.
   */
  private async checkHolder(key: string, owner?: string): Promise<BucketLock | 'held' | 'retry'> {
    const record = await this.read(key);
    if (record === null) return 'retry';
    if (owner !== undefined && record.owner === owner) return this.held(key, owner);
    if (record.expires + this.timing.leaseMs > Date.now()) return 'held';
    await this.bucket.send('DELETE', key);
    return 'retry';
  }

  private async read(key: string): Promise<LockRecord | null> {
    const got = await this.bucket.send('GET', key);
    if (got.status === 404) return null;
    if (got.status !== 200) throw unexpected('lock GET', got);
    try {
      const r = JSON.parse(got.text) as Partial<LockRecord>;
      if (typeof r.owner === 'string' && Number.isFinite(r.expires)) return r as LockRecord;
    } catch {
      /* a half-written or foreign record counts as expired */
    }
    return { owner: '', expires: 0 };
  }

  private write(key: string, owner: string, conditional: boolean) {
    const body = Buffer.from(JSON.stringify({ owner, expires: Date.now() + this.timing.leaseMs } satisfies LockRecord));
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (conditional) headers['if-none-match'] = '*';
    return this.bucket.send('PUT', key, { headers, body });
  }

  private held(key: string, owner: string): BucketLock {
    // Renewed well inside the lease, so a slow origin download never looks dead.
    const renew = setInterval(
      () => void this.write(key, owner, false).catch(() => undefined),
      Math.max(250, Math.floor(this.timing.leaseMs / 3)),
    );
    renew.unref();
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(renew);
        await this.bucket.send('DELETE', key).catch(() => undefined);
      },
    };
  }
}

function unexpected(what: string, answer: { status: number; text: string }): BucketUnreachable {
  return new BucketUnreachable(`${what} answered ${answer.status} ${s3ErrorCode(answer as never)}`);
}
