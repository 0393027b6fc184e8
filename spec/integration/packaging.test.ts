import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { REPO_ROOT } from '../support/gateway-process';

// Packaging: what can be checked on this machine is checked with the real tools —
// systemd-analyze on the unit, shellcheck on the scripts, the inventory script run against
// configurations — and the Dockerfile and package.json are held to what the README promises.

const SUPPORT = join(REPO_ROOT, 'support');
const dir = mkdtempSync(join(tmpdir(), 'gw-packaging-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** stdout+stderr and status of a tool; a missing tool is a failure that names the package. */
function tool(cmd: string, args: string[], pkg: string, env?: NodeJS.ProcessEnv): { status: number | null; output: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: env ?? process.env, timeout: 30_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT')
    throw new Error(`${cmd} is not installed: apt-get install -y --no-install-recommends ${pkg}`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('systemd unit', () => {
  const unit = readFileSync(join(SUPPORT, 'mender-gateway.service'), 'utf8');
  // The unit names /usr/bin/node; verify checks the binary exists, so point it at this node.
  const verify = (text: string): { status: number | null; output: string } => {
    const file = join(dir, 'mender-gateway.service');
    writeFileSync(file, text.replace('/usr/bin/node ', `${process.execPath} `));
    return tool('systemd-analyze', ['verify', file], 'systemd');
  };

  it('systemd-analyze verify reports nothing (and does report a broken copy)', () => {
    const ok = verify(unit);
    assert.equal(ok.status, 0, ok.output);
    assert.equal(ok.output.trim(), '', ok.output);
    const broken = verify(unit.replace('AmbientCapabilities=', 'AmbientCapabilites='));
    assert.match(broken.output, /Unknown key 'AmbientCapabilites'/);
  });

  it('runs as a non-root user with only CAP_NET_BIND_SERVICE, reloads with SIGHUP, stops after ShutdownTimeout', () => {
    const value = (key: string): string[] => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]);
    assert.deepEqual(value('User'), ['mender-gateway']);
    assert.deepEqual(value('AmbientCapabilities'), ['CAP_NET_BIND_SERVICE']);
    assert.deepEqual(value('CapabilityBoundingSet'), ['CAP_NET_BIND_SERVICE']);
    assert.deepEqual(value('ExecReload'), ['/bin/kill -HUP $MAINPID']);
    assert.deepEqual(value('CacheDirectory'), ['mender-gateway'], 'the default ArtifactsCache.Path is writable');
    assert.match(value('ExecStart')[0], /bin\/gateway\.js --config \/etc\/mender\/mender-gateway\.conf$/);
    assert.ok(Number(value('TimeoutStopSec')[0]) > 30, 'longer than the default ShutdownTimeout');
  });
});

describe('shell scripts', () => {
  for (const script of ['mender-inventory-mender-gateway', 'openwrt/mender-gateway.init']) {
    it(`shellcheck ${script}`, () => {
      const r = tool('shellcheck', [join(SUPPORT, script)], 'shellcheck');
      assert.equal(r.status, 0, r.output);
      accessSync(join(SUPPORT, script), constants.X_OK);
    });
  }

  it('the procd script runs the gateway under procd with respawn, reload by HUP and the capabilities file', () => {
    const init = readFileSync(join(SUPPORT, 'openwrt', 'mender-gateway.init'), 'utf8');
    assert.match(init, /^#!\/bin\/sh \/etc\/rc\.common$/m);
    assert.match(init, /^USE_PROCD=1$/m);
    assert.match(init, /procd_set_param command "\$NODE" --max-semi-space-size=2 "\$GATEWAY" --config "\$CONF"/);
    assert.match(init, /procd_send_signal mender-gateway '\*' HUP/);
    const caps = JSON.parse(readFileSync(join(SUPPORT, 'openwrt', 'mender-gateway.capabilities.json'), 'utf8')) as Record<string, string[]>;
    for (const set of ['bounding', 'effective', 'ambient', 'permitted']) assert.deepEqual(caps[set], ['CAP_NET_BIND_SERVICE'], set);
  });
});

describe('inventory script', () => {
  const run = (config: unknown | null, env: Record<string, string> = {}): string => {
    const file = join(dir, `gw-${Math.random().toString(36).slice(2)}.conf`);
    if (config !== null) writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
    return execFileSync(join(SUPPORT, 'mender-inventory-mender-gateway'), {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', MENDER_GATEWAY_CONF: file, MENDER_GATEWAY_NODE: process.execPath, ...env },
    });
  };
  const cases: [string, unknown | null, Record<string, string>, string][] = [
    [
      'enabled: both attributes',
      { Features: { DeviceSystem: { Enabled: true, SystemID: 'plant-7' } } },
      {},
      'mender_is_gateway=true\nmender_gateway_system_id=plant-7\n',
    ],
    [
      'keys match case-insensitively',
      { features: { devicesystem: { enabled: true, systemid: 'p8' } } },
      {},
      'mender_is_gateway=true\nmender_gateway_system_id=p8\n',
    ],
    [
      'disabled: no system id (MEN-8937)',
      { Features: { DeviceSystem: { Enabled: false, SystemID: 'plant-7' } } },
      {},
      'mender_is_gateway=true\n',
    ],
    ['enabled without an id', { Features: { DeviceSystem: { Enabled: true } } }, {}, 'mender_is_gateway=true\n'],
    ['no DeviceSystem section', { HTTPS: { Enabled: true } }, {}, 'mender_is_gateway=true\n'],
    ['no configuration file', null, {}, 'mender_is_gateway=true\n'],
    ['malformed configuration file', '{"Features":', {}, 'mender_is_gateway=true\n'],
    [
      'environment wins: enabled by DEVICE_SYSTEM_*',
      {},
      { DEVICE_SYSTEM_ENABLED: 'true', DEVICE_SYSTEM_ID: 'env-id' },
      'mender_is_gateway=true\nmender_gateway_system_id=env-id\n',
    ],
    [
      'environment wins: disabled by DEVICE_SYSTEM_ENABLED=0',
      { Features: { DeviceSystem: { Enabled: true, SystemID: 'x' } } },
      { DEVICE_SYSTEM_ENABLED: '0' },
      'mender_is_gateway=true\n',
    ],
  ];
  for (const [name, config, env, want] of cases) it(name, () => assert.equal(run(config, env), want));
});

describe('container and npm', () => {
  const dockerfile = readFileSync(join(SUPPORT, 'Dockerfile'), 'utf8');
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));

  it('the image runs as UID 65534 on 8080/8443, configured by environment, entrypoint the gateway', () => {
    assert.match(runtime, /^USER 65534:65534$/m);
    assert.match(runtime, /^EXPOSE 8080 8443( 9102)?$/m);
    assert.match(runtime, /HTTP_LISTEN=:8080/);
    assert.match(runtime, /HTTPS_LISTEN=:8443/);
    assert.match(runtime, /^ENTRYPOINT \["node", "\/usr\/lib\/mender-gateway\/bin\/gateway\.js"\]$/m);
  });

  it('every path the image copies from the repository exists', () => {
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const src of m[1].split(/\s+/)) accessSync(join(REPO_ROOT, src));
    }
    for (const m of runtime.matchAll(/^COPY --from=build \/src\/(\S+) /gm)) {
      // Built paths (dist/, node_modules/) exist after `make build`; sources must exist now.
      if (!/^(dist|node_modules)\b/.test(m[1])) accessSync(join(REPO_ROOT, m[1]));
    }
  });

  it('package.json bin runs: npx mender-gateway --version', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; version: string };
    const bin = join(REPO_ROOT, pkg.bin['mender-gateway']);
    accessSync(bin, constants.X_OK);
    assert.match(readFileSync(bin, 'utf8'), /^#!\/usr\/bin\/env node\n/);
    assert.match(
      execFileSync(bin, ['--version'], { encoding: 'utf8' }),
      new RegExp(`^mender-gateway ${pkg.version.replace(/\./g, '\\.')}\\n`),
    );
  });
});
