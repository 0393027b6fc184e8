// Every secret the gateway holds, named once. The configuration's error lines, the effective
// configuration in the debug log and the log's field masking all read these lists, so a new
// secret key is added here and nowhere else.

/** Configuration keys whose values are secrets, by key path. */
export const SECRET_CONFIG_KEYS: readonly (readonly string[])[] = [
  ['Features', 'mTLS', 'MenderPassword'],
  ['Features', 'ArtifactsProxy', 'ArtifactsCache', 'SignatureSecret'],
  // The key id is half of the credential and names the account: masked like the secret.
  ['Features', 'ArtifactsProxy', 'ArtifactsCache', 'S3', 'AccessKeyID'],
  ['Features', 'ArtifactsProxy', 'ArtifactsCache', 'S3', 'SecretAccessKey'],
];

/**
 * Whether the value at this key path is a secret, or may hold one: a secret key's parent given
 * as a list or a string (`"mTLS": ["x", "s3cret"]`) is the secret written in the wrong place.
 */
export function isSecretConfigKey(segments: readonly string[]): boolean {
  return (
    segments.length > 0 && SECRET_CONFIG_KEYS.some((path) => segments.length <= path.length && segments.every((s, i) => s === path[i]))
  );
}

/**
 * Words that make a log field's name secret-looking (matched without case): the secret config
 * keys' own names, plus what requests and S3 carry (headers, tokens, SigV4 signatures and
 * credentials, session tokens).
 */
export const SECRET_FIELD_WORDS: readonly string[] = [
  ...SECRET_CONFIG_KEYS.map((path) => path[path.length - 1]),
  'authorization',
  'password',
  'passwd',
  'secret',
  'token',
  'jwt',
  'signature',
  'cookie',
  'credential',
  'access_?key',
];

/**
 * Query parameters that carry a credential in a URL: SigV4 presigned URLs (X-Amz-Signature,
 * X-Amz-Credential, X-Amz-Security-Token), SigV2 ones, the gateway's own links.
 */
export const SECRET_QUERY_PARAMETERS: readonly string[] = [
  'X-Amz-Signature',
  'X-Amz-Credential',
  'X-Amz-Security-Token',
  'Signature',
  'AWSAccessKeyId',
  'x-men-signature',
];
