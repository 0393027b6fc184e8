// mender-gateway cache ... (issue 18 §2). In progress: replaced by the full command.
export async function runCacheCommand(_argv: string[]): Promise<number> {
  process.stderr.write('mender-gateway: cache: not built yet\n');
  return 2;
}
