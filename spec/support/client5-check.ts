import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { client5Unavailable } from './client5-fleet';
import { REPO_ROOT } from './gateway-process';
import { menderConnectUnavailable } from './mender-connect-process';

// `make test` runs this before the end-to-end files: when Mender client 5 cannot run here, one
// line names the client-5 test files that will skip and says how to get the binaries. The files
// skip only in that case; `.ci/run` refuses to run without the binaries.

const reason = client5Unavailable();
if (reason) {
  const files = readdirSync(join(REPO_ROOT, 'dist', 'spec', 'e2e'))
    .filter((n) => /^client5-.*\.test\.js$/.test(n))
    .map((n) => n.replace(/\.js$/, '.ts'));
  process.stdout.write(`client 5 end-to-end tests not run (${files.join(', ')}): ${reason}\n`);
}

// mender-connect is a Debian package (`.ci/run` installs it): its files skip without it, saying so.
const connect = menderConnectUnavailable();
if (connect) {
  const files = readdirSync(join(REPO_ROOT, 'dist', 'spec', 'e2e'))
    .filter((n) => /mender-connect.*\.test\.js$/.test(n))
    .map((n) => n.replace(/\.js$/, '.ts'));
  process.stdout.write(`mender-connect end-to-end tests not run (${files.join(', ')}): ${connect}\n`);
}
