import type { LinkSigner } from '../artifacts/signed-link';
import { formatExpire } from '../artifacts/signed-link';
import type { DomainAllowlist } from '../artifacts/domain-allowlist';
import { describeJsonSyntaxError } from '../config/json-syntax-error';

// Deployment instructions (the 200 answer of deployments/next) → the same instructions
// with artifact.source.uri pointing at a signed gateway link. Pure: the caller reads the
// body and writes the result. Only `uri` and `expire` change; the object is re-serialized
// with keys in their original order, so every other field keeps its value (JSON
// number spelling such as 1.0 vs 1 is the only thing not byte-preserved).

export interface RewriteOptions {
  signer: LinkSigner;
  allowlist: DomainAllowlist;
  /** LinkExpireDuration in ms. */
  linkTtlMs: number;
  now: Date;
  /**
   * The `Date` of the server's answer: the presigned URL's `expire` is on the server's clock, so
   * what is left of it is `expire - serverDate`, counted from our `now` (a clock a day off, or
   * stepped, would otherwise make every link born expired, or outlive its URL).
   */
  serverDate?: Date;
}

export type RewriteResult =
  | { kind: 'rewritten'; body: string; origin: URL; link: string; expiresAt: Date }
  /** Left as it was; the caller logs `<host> returned by Mender server is not whitelisted`. */
  | { kind: 'not-whitelisted'; host: string }
  /** Valid JSON without a usable artifact.source.uri: nothing to rewrite, passed on as is. */
  | { kind: 'no-link'; detail: string }
  | { kind: 'malformed'; detail: string };

export function rewriteInstructions(text: string, opts: RewriteOptions): RewriteResult {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    // Node's message quotes the body around the error: a presigned URL's signature among it.
    return { kind: 'malformed', detail: `deployment instructions are not JSON: ${describeJsonSyntaxError(text, err as Error)}` };
  }
  if (!isObject(doc)) return { kind: 'malformed', detail: 'deployment instructions are not a JSON object' };
  const artifact = doc.artifact;
  const source = isObject(artifact) ? artifact.source : undefined;
  if (!isObject(source) || typeof source.uri !== 'string') return { kind: 'no-link', detail: 'no artifact.source.uri' };
  let origin: URL;
  try {
    origin = new URL(source.uri);
  } catch {
    return { kind: 'no-link', detail: 'artifact.source.uri is not an absolute URL' };
  }
  if (!opts.allowlist.allows(origin)) return { kind: 'not-whitelisted', host: origin.host };

  // The link never outlives the URL it stands for (the presigned URL's own expiry).
  let expiresAt = new Date(opts.now.getTime() + opts.linkTtlMs);
  const originExpire = typeof source.expire === 'string' ? onOurClock(Date.parse(source.expire), opts) : NaN;
  if (!Number.isNaN(originExpire) && originExpire < expiresAt.getTime()) expiresAt = new Date(originExpire);
  const link = opts.signer.mint(source.uri, expiresAt);
  source.uri = link;
  source.expire = formatExpire(expiresAt);
  return { kind: 'rewritten', body: JSON.stringify(doc), origin, link, expiresAt };
}

/** A time on the server's clock, on ours; a second early, as `Date` has whole seconds. */
function onOurClock(serverTime: number, opts: RewriteOptions): number {
  const serverNow = opts.serverDate?.getTime() ?? NaN;
  if (Number.isNaN(serverTime) || Number.isNaN(serverNow)) return serverTime;
  return opts.now.getTime() + (serverTime - serverNow) - 1000;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
