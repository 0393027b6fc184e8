import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../observe/log';

// The key that signs download links. Configured (SignatureSecret, base64) it is used as
// is. Empty, one is generated once and kept next to the cache (mode 0600) so links minted
// before a restart still verify after it; replicas must share a configured secret (or the
// directory). The secret itself is never logged.

export const SECRET_FILE = 'link-signature-secret';

export async function resolveLinkSecret(configured: string, cachePath: string, log: Logger): Promise<Buffer> {
  if (configured.trim() !== '') return decodeSecret(configured, 'Features.ArtifactsProxy.ArtifactsCache.SignatureSecret');
  const file = join(cachePath, SECRET_FILE);
  const existing = await readSecretFile(file);
  if (existing) {
    log.info(`no SignatureSecret configured: signing download links with the generated secret kept in ${file}`);
    return existing;
  }
  const fresh = randomBytes(32);
  try {
    await mkdir(cachePath, { recursive: true, mode: 0o700 });
    // 'wx': two gateways sharing the directory and starting together keep one secret.
    await writeFile(file, fresh.toString('base64') + '\n', { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      const raced = await readSecretFile(file);
      if (raced) return raced;
    }
    throw new Error(`SignatureSecret is empty and ${file} cannot be written: ${(err as Error).message}`);
  }
  await chmod(file, 0o600); // in case the umask widened it
  log.info(
    `no SignatureSecret configured: generated one and stored it in ${file} (mode 0600); set SignatureSecret to the same value on every replica`,
  );
  return fresh;
}

async function readSecretFile(file: string): Promise<Buffer | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read the link signature secret ${file}: ${(err as Error).message}`);
  }
  return decodeSecret(text, file);
}

function decodeSecret(text: string, where: string): Buffer {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) && !/^[A-Za-z0-9_-]+$/.test(trimmed)) {
    throw new Error(`${where}: not base64`);
  }
  const secret = Buffer.from(trimmed, trimmed.includes('-') || trimmed.includes('_') ? 'base64url' : 'base64');
  if (secret.length < 16) throw new Error(`${where}: must decode to at least 16 bytes (has ${secret.length})`);
  return secret;
}
