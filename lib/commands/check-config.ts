// mender-gateway check-config (issue 18 §1). In progress: replaced by the full check.
export async function runCheckConfig(_argv: string[]): Promise<number> {
  process.stderr.write('mender-gateway: check-config: not built yet\n');
  return 2;
}
