// Runs the OpenFeature web SDK with the OFREP web provider against slipway's OFREP server.
// TestNodeWebProvider (ofrep/node_test.go) starts the server and sets OFREP_BASE_URL; the
// server also answers POST /test/change by swapping in a new flag revision.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OpenFeature, ProviderEvents } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';
import { EventSource } from './eventsource.mjs';

globalThis.EventSource ??= EventSource;

const baseUrl = process.env.OFREP_BASE_URL;
const apiKey = process.env.OFREP_API_KEY;

function waitFor(what, check, ms = 10000) {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const tick = () => {
      const v = check();
      if (v) return resolve(v);
      if (Date.now() - start > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

test('OFREP web provider: bulk, ETag, SSE', async (t) => {
  assert.ok(baseUrl, 'OFREP_BASE_URL is not set; run this through go test ./ofrep -run TestNodeWebProvider');
  const provider = new OFREPWebProvider({
    baseUrl,
    cacheMode: 'disabled',
    headers: [['X-API-Key', apiKey]],
  });
  const changes = [];
  OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, (e) => changes.push(e.flagsChanged ?? []));
  await OpenFeature.setContext({ targetingKey: 'user-1', email: 'ann@example.com', plan: 'pro' });
  await OpenFeature.setProviderAndWait(provider);
  t.after(() => OpenFeature.close());
  const client = OpenFeature.getClient();

  await t.test('bulk evaluation of every type', () => {
    const banner = client.getBooleanDetails('banner', false);
    assert.equal(banner.value, true);
    assert.equal(banner.reason, 'TARGETING_MATCH');
    assert.equal(banner.variant, 'on');
    assert.deepEqual(banner.flagMetadata, { experiment: true, flagSetId: 'shop', team: 'growth', version: 3 });
    assert.equal(client.getStringValue('headerColor', 'none', {}), 'green'); // flagKey+email bucketing of ann@example.com
    assert.equal(client.getNumberValue('limit', 0), 100);
    assert.equal(client.getNumberValue('ratio', 0), 0.5);
    assert.deepEqual(client.getObjectValue('theme', {}), { bg: '#000', contrast: 21, fg: '#fff' });
    assert.equal(client.getStringValue('pro-only', 'code-default'), 'pro');
    const unset = client.getBooleanDetails('unset', true);
    assert.equal(unset.value, true);
    assert.equal(unset.reason, 'DEFAULT');
    const retired = client.getBooleanDetails('retired', false);
    assert.equal(retired.value, false);
    assert.equal(retired.reason, 'DISABLED');
    const broken = client.getBooleanDetails('broken', true);
    assert.equal(broken.value, true);
    assert.equal(broken.errorCode, 'GENERAL');
    const missing = client.getBooleanDetails('no-such-flag', true);
    assert.equal(missing.errorCode, 'FLAG_NOT_FOUND');
  });

  await t.test('unchanged context revalidates with If-None-Match (server answers 304)', async () => {
    await OpenFeature.setContext({ targetingKey: 'user-1', email: 'ann@example.com', plan: 'pro' });
    assert.equal(client.getBooleanValue('banner', false), true);
  });

  await t.test('changed attribute, same targetingKey: the old ETag does not match', async () => {
    // The provider keeps its ETag when only non-targetingKey attributes change; the server's
    // ETag covers the whole context, so this must be a 200 with re-evaluated flags.
    await OpenFeature.setContext({ targetingKey: 'user-1', email: 'ann@other.org', plan: 'pro' });
    assert.equal(client.getBooleanValue('banner', true), false);
  });

  await t.test('a flag change reaches the provider through the event stream', async () => {
    const es = await waitFor('the event stream to open', () => EventSource.instances.find((e) => e.readyState === EventSource.OPEN));
    assert.match(es.url, /\/ofrep\/v1\/events\?token=[0-9a-f]+$/);
    const before = changes.length;
    const res = await fetch(`${baseUrl}/test/change`, { method: 'POST' });
    assert.equal(res.status, 204);
    await waitFor('ConfigurationChanged after the change', () => changes.length > before);
    assert.ok(changes.at(-1).includes('limit'), `flagsChanged ${JSON.stringify(changes.at(-1))}`);
    assert.equal(client.getNumberValue('limit', 0), 10);
    assert.equal(es.opened, 1, 'the stream stayed open');
  });
});
