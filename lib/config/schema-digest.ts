import { createHash } from 'node:crypto';
import schema from './schema.json';

/** Which schema a validator was made from: the generated validator carries it, the loader compares. */
export function schemaDigest(): string {
  return createHash('sha256').update(JSON.stringify(schema)).digest('hex').slice(0, 16);
}
