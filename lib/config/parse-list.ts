// A list in an environment variable, e.g. ARTIFACTS_PROXY_DOMAIN_WHITELIST. The product does not
// document a separator, so accept what operators write: commas, spaces, both, or a JSON array.

export function parseList(text: string): string[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      throw new Error(`must be a list (comma- or space-separated, or a JSON array of strings), got ${JSON.stringify(text)}`);
    }
    if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) {
      throw new Error(`must be a JSON array of strings, got ${JSON.stringify(text)}`);
    }
    return parsed as string[];
  }
  return trimmed.split(/[\s,]+/).filter((item) => item !== '');
}
