import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { injectInventory, type DeviceSystemSettings } from '../../lib/device-system/inject-inventory';

// DeviceSystem: what a device's inventory upload becomes on its way upstream.

const settings: DeviceSystemSettings = {
  SystemID: 'plant-7',
  DefaultInventory: [
    { Name: 'site', Value: 'Hall B' },
    { Name: 'rack', Value: 12 },
    { Name: 'tags', Value: ['line-1', 'line-2'] },
    { Name: 'site', Value: 'ignored repeat' },
  ],
};

const parsed = (body: Buffer): { name: string; value: unknown }[] =>
  JSON.parse(body.toString('utf8')) as { name: string; value: unknown }[];

describe('injectInventory', () => {
  const rewritten: { name: string; body: string; expect: { name: string; value: unknown }[]; keepsPrefix?: string }[] = [
    {
      name: 'adds the system id and every default the device did not send',
      body: '[{"name":"device_type","value":"rpi4"}]',
      expect: [
        { name: 'device_type', value: 'rpi4' },
        { name: 'mender_gateway_system_id', value: 'plant-7' },
        { name: 'site', value: 'Hall B' },
        { name: 'rack', value: 12 },
        { name: 'tags', value: ['line-1', 'line-2'] },
      ],
    },
    {
      name: "the device's own values win, the system id included",
      body: '[{"name":"site","value":"Hall A"},{"name":"mender_gateway_system_id","value":"nested-gw"}]',
      expect: [
        { name: 'site', value: 'Hall A' },
        { name: 'mender_gateway_system_id', value: 'nested-gw' },
        { name: 'rack', value: 12 },
        { name: 'tags', value: ['line-1', 'line-2'] },
      ],
    },
    {
      name: 'an empty array gets no leading comma',
      body: ' [ ] \n',
      expect: [
        { name: 'mender_gateway_system_id', value: 'plant-7' },
        { name: 'site', value: 'Hall B' },
        { name: 'rack', value: 12 },
        { name: 'tags', value: ['line-1', 'line-2'] },
      ],
    },
    {
      // JSON.parse + stringify would turn this into 12345678901234567000 and drop the spacing.
      name: "the device's bytes are kept exactly (big numbers, spacing, escapes)",
      body: '[ {"name": "serial", "value": 12345678901234567890, "description": "caf\\u00e9"} ]',
      expect: [],
      keepsPrefix: '[ {"name": "serial", "value": 12345678901234567890, "description": "caf\\u00e9"} ,',
    },
  ];
  for (const c of rewritten) {
    it(c.name, () => {
      const out = injectInventory(Buffer.from(c.body), settings);
      assert.equal(out.kind, 'rewritten');
      if (out.kind !== 'rewritten') return;
      if (c.keepsPrefix) assert.ok(out.body.toString().startsWith(c.keepsPrefix), out.body.toString());
      else assert.deepEqual(parsed(out.body), c.expect);
      assert.equal(new Set(parsed(out.body).map((a) => a.name)).size, parsed(out.body).length, 'no attribute twice');
    });
  }

  it('nothing to add: unchanged', () => {
    const body =
      '[{"name":"mender_gateway_system_id","value":"x"},{"name":"site","value":1},{"name":"rack","value":1},{"name":"tags","value":1}]';
    assert.deepEqual(injectInventory(Buffer.from(body), settings), { kind: 'unchanged' });
    assert.deepEqual(
      injectInventory(Buffer.from('[]'), { SystemID: '', DefaultInventory: [] }).kind,
      'rewritten',
      'an empty SystemID is still a value',
    );
  });

  const malformed: [string, string, RegExp][] = [
    ['not JSON', '[{"name":"a"', /not JSON/],
    ['an object, not an array', '{"name":"a","value":1}', /not a JSON array/],
    ['an attribute without a name', '[{"value":1}]', /string "name"/],
    ['a name that is not a string', '[{"name":7,"value":1}]', /string "name"/],
    ['a bare value in the array', '["a"]', /string "name"/],
    ['empty body', '', /not JSON/],
  ];
  for (const [name, body, reason] of malformed) {
    it(`malformed: ${name}`, () => {
      const out = injectInventory(Buffer.from(body), settings);
      assert.equal(out.kind, 'malformed');
      if (out.kind === 'malformed') assert.match(out.reason, reason);
    });
  }
});
