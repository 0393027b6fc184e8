'use strict';
// The install tree every package is made from: <dir>/{lib,package.json} is what goes to
// /usr/lib/mender-gateway (with bin/, the `#!/usr/bin/env node` shim, where no runtime is
// carried: the .ipk and the -all tarball); the rest (config, service files, INSTALL) beside it.
const { chmodSync, cpSync, mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { basename, join } = require('node:path');
const { bundleGateway, bundleCrlLibs, CRL_LIBS, ROOT } = require('./bundle');
const { checkExample, exampleConfig } = require('./example-config');
const { thirdPartyNotices } = require('./third-party');

const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const VERSION = PKG.version;
// uPlot's script and stylesheet, which the status page draws its history with: served as files
// (lib/config/install-root.ts CHART_LIBRARY_DIR), so copied from the package, not bundled.
const CHART_LIBRARY = { dir: 'node_modules/uplot', files: ['dist/uPlot.iife.min.js', 'dist/uPlot.min.css', 'LICENSE'] };
const SHIM =
  "#!/usr/bin/env node\n'use strict';\n// The bundle runs the gateway on load (support/release/bundle.js).\nrequire('../lib/mender-gateway.js');\n";

/** text with each [from, to] replaced; a from that is not there is an error, so no edit is silently lost. */
function edit(text, pairs, what) {
  for (const [from, to] of pairs) {
    if (!text.includes(from)) throw new Error(`${what}: "${from}" not found`);
    text = text.split(from).join(to);
  }
  return text;
}

/** The systemd unit and procd script, pointed at the bundle instead of a checkout. */
function serviceFiles() {
  const unit = edit(
    readFileSync(join(ROOT, 'support', 'mender-gateway.service'), 'utf8'),
    [
      ['ExecStart=/usr/bin/node /usr/lib/mender-gateway/bin/gateway.js ', 'ExecStart=/usr/bin/mender-gateway '],
      [
        'Install the gateway under\n# /usr/lib/mender-gateway (see docs/operations.md, "Packages"), then:',
        'Installed by the .deb; by hand\n# (see INSTALL of the release tarball):',
      ],
    ],
    'mender-gateway.service',
  );
  const init = edit(
    readFileSync(join(ROOT, 'support', 'openwrt', 'mender-gateway.init'), 'utf8'),
    [['GATEWAY=/usr/lib/mender-gateway/bin/gateway.js', 'GATEWAY=/usr/lib/mender-gateway/lib/mender-gateway.js']],
    'mender-gateway.init',
  );
  const caps = readFileSync(join(ROOT, 'support', 'openwrt', 'mender-gateway.capabilities.json'), 'utf8');
  return { unit, init, caps };
}

/** Writes the tarball's tree into dir; returns esbuild's metafile. */
async function stageRelease(dir) {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  const gateway = await bundleGateway(join(dir, 'lib', 'mender-gateway.js'));
  const crlLibs = await bundleCrlLibs(join(dir, 'lib', CRL_LIBS));
  const metafile = { inputs: { ...gateway.inputs, ...crlLibs.inputs }, outputs: { ...gateway.outputs, ...crlLibs.outputs } };
  writeFileSync(join(dir, 'bin', 'mender-gateway'), SHIM, { mode: 0o755 });
  writeFileSync(join(dir, 'THIRD-PARTY-LICENSES'), thirdPartyNotices(metafile, [CHART_LIBRARY.dir]));
  // What lib/config/install-root.ts's users read: the version (--version, status page) and the assets.
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'mender-gateway', version: VERSION, license: PKG.license }, null, 2) + '\n',
  );
  cpSync(join(ROOT, 'lib', 'observe', 'status-page', 'assets'), join(dir, 'lib', 'observe', 'status-page', 'assets'), { recursive: true });
  for (const f of CHART_LIBRARY.files)
    cpSync(join(ROOT, CHART_LIBRARY.dir, f), join(dir, 'lib', 'observe', 'status-page', 'assets', 'uplot', basename(f)));

  const conf = join(dir, 'mender-gateway.conf');
  writeFileSync(conf, JSON.stringify(exampleConfig(), null, 2) + '\n');
  const problems = checkExample(conf);
  if (problems.length > 0) throw new Error(`the example configuration does not load:\n${problems.join('\n')}`);

  const { unit, init, caps } = serviceFiles();
  mkdirSync(join(dir, 'support', 'openwrt'), { recursive: true });
  writeFileSync(join(dir, 'support', 'mender-gateway.service'), unit);
  writeFileSync(join(dir, 'support', 'openwrt', 'mender-gateway.init'), init, { mode: 0o755 });
  writeFileSync(join(dir, 'support', 'openwrt', 'mender-gateway.capabilities.json'), caps);
  cpSync(join(ROOT, 'docs', 'openwrt.md'), join(dir, 'support', 'openwrt', 'README.md'));
  // The environment file's template: the packages install it 0600, INSTALL says how by hand.
  writeFileSync(join(dir, 'support', 'mender-gateway.default'), readFileSync(join(ROOT, 'support', 'mender-gateway.default'), 'utf8'));
  writeFileSync(join(dir, 'INSTALL'), readFileSync(join(__dirname, 'INSTALL'), 'utf8').split('@VERSION@').join(VERSION));
  for (const f of ['bin/mender-gateway', 'support/openwrt/mender-gateway.init']) chmodSync(join(dir, f), 0o755);
  return metafile;
}

module.exports = { stageRelease, VERSION, PKG };
