import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import type { Feature } from '../../lib/http/feature';
import type { Handler, RequestContext } from '../../lib/http/route';
import { buildRouteTable } from '../../lib/http/route-table';

// The route table: one owner per endpoint, one wrapper per stage, wrappers in stage order
// whatever the order of the features, and the labels logs and the status board read.

const req = (method: string, url: string, upgrade = false) =>
  ({ method, url, headers: upgrade ? { upgrade: 'websocket' } : {} }) as IncomingMessage;
const said: string[] = [];
const handler =
  (name: string): Handler =>
  () =>
    void said.push(name);
const wrapper = (name: string) => (inner: Handler) => (r: IncomingMessage, s: ServerResponse, c: RequestContext) => {
  said.push(name);
  return inner(r, s, c);
};
const fallbacks = { web: handler('pass-through'), ws: () => said.push('tunnel') };
const run = (table: ReturnType<typeof buildRouteTable>, method: string, url: string): string[] => {
  said.length = 0;
  void table.select(req(method, url)).handle(req(method, url), {} as ServerResponse, {} as RequestContext);
  return [...said];
};
const NEXT = '/api/devices/v1/deployments/device/deployments/next';
const INVENTORY = '/api/devices/v1/inventory/device/attributes';

describe('route table', () => {
  const owner: Feature = { name: 'A', handlers: { 'deployments-next-v1': handler('A') } };
  const body: Feature = { name: 'B', wrappers: { 'inventory-attributes': { stage: 'body', wrap: wrapper('B') } } };
  const delivery: Feature = {
    name: 'C',
    wrappers: {
      'inventory-attributes': { stage: 'delivery', wrap: wrapper('C') },
      'deployments-next-v1': { stage: 'delivery', wrap: wrapper('C') },
    },
  };

  it('an endpoint goes to its owner inside the wrappers, body stage outermost, whatever the order of the features', () => {
    for (const features of [
      [owner, body, delivery],
      [delivery, body, owner],
      [body, delivery, owner],
    ]) {
      const table = buildRouteTable(features, fallbacks);
      assert.deepEqual(run(table, 'GET', NEXT), ['C', 'A']);
      assert.deepEqual(run(table, 'PUT', INVENTORY), ['B', 'C', 'pass-through']);
      assert.deepEqual(run(table, 'GET', '/api/devices/v1/inventory/device/other'), ['pass-through']);
      // A method the endpoint does not take is the pass-through's.
      assert.deepEqual(run(table, 'DELETE', NEXT), ['pass-through']);
    }
  });

  it('two owners of one endpoint, or two wrappers of one stage, refuse to start', () => {
    assert.throws(() => buildRouteTable([owner, { name: 'D', handlers: { 'deployments-next-v1': handler('D') } }], fallbacks), {
      message: 'deployments-next-v1 is answered by both A and D',
    });
    assert.throws(
      () => buildRouteTable([body, { name: 'E', wrappers: { 'inventory-attributes': { stage: 'body', wrap: wrapper('E') } } }], fallbacks),
      {
        message: 'inventory-attributes: both B and E wrap its body stage',
      },
    );
  });

  it('labels: a signed link is local only when the gateway answers it; its path is never logged', () => {
    const link = '/api/internal/v1/gateway/artifacts/abc?x-men-signature=s';
    const unowned = buildRouteTable([], fallbacks).select(req('GET', link));
    assert.deepEqual([unowned.name, unowned.local, unowned.sensitivePath], ['artifact-link', false, true]);
    const owned = buildRouteTable([{ name: 'P', handlers: { 'artifact-link': handler('P') } }], fallbacks).select(req('GET', link));
    assert.deepEqual([owned.name, owned.local, owned.sensitivePath], ['artifact-link', true, true]);
    assert.equal(buildRouteTable([], fallbacks).select(req('GET', '/anything')).name, 'pass-through');
  });

  it('only GET deviceconnect upgrades; a plain GET there is the pass-through', () => {
    const table = buildRouteTable([], fallbacks);
    assert.equal(table.selectUpgrade(req('GET', '/api/devices/v1/deviceconnect/connect', true))?.name, 'deviceconnect');
    assert.equal(table.selectUpgrade(req('POST', '/api/devices/v1/deviceconnect/connect', true)), undefined);
    assert.equal(table.selectUpgrade(req('GET', NEXT, true)), undefined);
    assert.equal(table.select(req('GET', '/api/devices/v1/deviceconnect/connect')).name, 'pass-through');
  });
});
