// The project's own contract of the Mender messages the gateway handles
// (spec/contracts/gateway/messages.schema.json): it refuses what the gateway could not work
// with, the gateway's own outputs satisfy it, and where Mender's OpenAPI file is present every
// sample it accepts is accepted there too (it is no looser than the server's own definition).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { GatewayContract, type MessageName } from '../support/gateway-contract';
import { MenderSpec } from '../support/spec-validator';
import { rewriteInstructions } from '../../lib/deployments/rewrite-instructions';
import { createLinkSigner } from '../../lib/artifacts/signed-link';
import { createDomainAllowlist } from '../../lib/artifacts/domain-allowlist';
import { injectInventory } from '../../lib/device-system/inject-inventory';
import { preauthorizeBody } from '../../lib/mtls/preauthorize';

const contract = new GatewayContract();
const pubkey = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
const expire = '2026-12-05T18:00:00Z';
const instructions = {
  id: 'w81s4fae-7dec-11d0-a765-00a0c91e6bf6',
  artifact: {
    id: 'a1',
    artifact_name: 'release-2',
    source: { uri: 'https://s3.example.com/bucket/a1?X-Amz-Signature=x', expire },
    device_types_compatible: ['qemux86-64'],
  },
};

/** Valid samples per message, each with the OpenAPI component that defines it (the cross-check). */
const VALID: [MessageName, string | null, unknown][] = [
  ['auth-request', 'AuthRequest', { id_data: '{"mac":"02:00:00:00:00:01"}', pubkey, tenant_token: 'tt' }],
  ['deployment-instructions', 'DeploymentInstructions', instructions],
  ['deployment-status', 'DeploymentStatus', { status: 'downloading' }],
  ['deployment-log', 'DeploymentLog', { messages: [{ timestamp: expire, level: 'info', message: 'hello' }] }],
  ['artifact-link', 'ArtifactLink', { uri: 'https://s3.example.com/a1', expire }],
  [
    'deployment',
    'DeploymentV1',
    { id: 'd1', name: 'rollout', artifact_name: 'release-2', created: expire, status: 'inprogress', device_count: 1, artifacts: ['a1'] },
  ],
  [
    'preauthorize-request',
    'PreAuthSet',
    JSON.parse(preauthorizeBody({ identity: { mac: '02:00:00:00:00:01' }, pubkeyPem: pubkey }, true).toString()),
  ],
  [
    'devauth-device',
    'Device',
    {
      id: 'd1',
      identity_data: { mac: '02:00:00:00:00:01' },
      status: 'accepted',
      auth_sets: [{ id: 'a1', identity_data: { mac: '02:00:00:00:00:01' }, pubkey, status: 'accepted', ts: expire }],
    },
  ],
  [
    'inventory-attributes',
    null,
    [
      { name: 'os', value: 'Linux' },
      { name: 'cpus', value: 2 },
      { name: 'ips', value: ['10.0.0.2'] },
    ],
  ],
  ['next-v2-request', null, { device_provides: { device_type: 'qemux86-64', artifact_name: 'release-1', 'rootfs-image.version': '1' } }],
  ['error', 'Error', { error: 'unauthorized', request_id: 'r1' }],
  ['device-jwt', null, 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJkIn0.c2ln'],
];

const INVALID: [MessageName, string, unknown][] = [
  [
    'deployment-instructions',
    'no link to rewrite',
    { id: 'd', artifact: { artifact_name: 'a', source: { expire }, device_types_compatible: ['x'] } },
  ],
  [
    'deployment-instructions',
    'a link that is not http(s)',
    { ...instructions, artifact: { ...instructions.artifact, source: { uri: 'ftp://x/a', expire } } },
  ],
  [
    'deployment-instructions',
    'an expiry that is not a time',
    { ...instructions, artifact: { ...instructions.artifact, source: { uri: 'https://x/a', expire: 'soon' } } },
  ],
  ['auth-request', 'no public key', { id_data: '{"mac":"x"}' }],
  ['auth-request', 'a key that is not PEM', { id_data: '{"mac":"x"}', pubkey: 'AAAA' }],
  ['deployment-status', 'an unknown status', { status: 'exploded' }],
  ['deployment-log', 'no messages', { messages: [] }],
  ['artifact-link', 'no uri', { expire }],
  ['deployment', 'no artifact ids', { id: 'd1' }],
  ['preauthorize-request', 'an extra field the server would refuse', { identity_data: { mac: 'x' }, pubkey, status: 'accepted' }],
  ['devauth-device', 'no device id', { identity_data: { mac: 'x' }, status: 'accepted' }],
  ['devauth-device', 'an auth set without its status', { id: 'd1', auth_sets: [{ id: 'a1', pubkey }] }],
  ['inventory-attributes', 'an attribute without a value', [{ name: 'os' }]],
  ['next-v2-request', 'no device type', { device_provides: { artifact_name: 'a' } }],
  ['device-jwt', 'not a JWT', '{"token":"x"}'],
  ['error', 'an empty error', { error: '' }],
];

test('every message of the contract compiles in ajv strict mode and has samples both ways', () => {
  const covered = new Set([...VALID, ...INVALID].map(([name]) => name));
  assert.deepEqual([...covered].sort(), [...contract.names].sort());
});

for (const [name, , body] of VALID) {
  test(`contract accepts a valid ${name}`, () => contract.assert(name, body));
}

for (const [name, why, body] of INVALID) {
  test(`contract refuses ${name}: ${why}`, () => assert.ok(contract.problems(name, body), `accepted: ${JSON.stringify(body)}`));
}

test("the gateway's rewritten instructions and extended inventory satisfy the contract", () => {
  const signer = createLinkSigner({ secret: Buffer.alloc(32, 7), gatewayUrl: 'https://gateway.example.com' });
  const r = rewriteInstructions(JSON.stringify(instructions), {
    signer,
    allowlist: createDomainAllowlist(['s3.example.com']),
    linkTtlMs: 3_600_000,
    now: new Date('2026-12-05T17:00:00Z'),
  });
  assert.equal(r.kind, 'rewritten');
  const rewritten = JSON.parse((r as { body: string }).body) as typeof instructions;
  contract.assert('deployment-instructions', rewritten);
  assert.match(rewritten.artifact.source.uri, /^https:\/\/gateway\.example\.com\/api\/internal\/v1\/gateway\/artifacts\//);
  const inv = injectInventory(Buffer.from('[{"name":"os","value":"Linux"}]'), {
    SystemID: 'site-7',
    DefaultInventory: [{ Name: 'site', Value: 'north' }],
  });
  assert.equal(inv.kind, 'rewritten');
  contract.assert('inventory-attributes', JSON.parse((inv as { body: Buffer }).body.toString()));
});

test("cross-check: every valid sample is valid by Mender's OpenAPI file too (where the file is present)", (t) => {
  const spec = MenderSpec.ifPresent();
  if (!spec) return t.diagnostic('Mender OpenAPI file absent: cross-check not run');
  let checked = 0;
  for (const [name, component, body] of VALID) {
    if (component === null) continue;
    assert.doesNotThrow(() => spec.assertSchema(component, body), `${name} as ${component}`);
    checked++;
  }
  assert.equal(checked, VALID.filter(([, c]) => c !== null).length);
});
