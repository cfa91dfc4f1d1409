// The official customerio-node client against a running Switchboard gateway.
// Run by gateway/e2e/audience_node_test.go, which starts the gateway, creates
// the keys and broadcasts, passes them in the environment, and afterwards
// checks what reached the webhook sink.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { APIClient, TrackClient, CustomerIORequestError } from 'customerio-node';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this through go test ./gateway/e2e -run TestAudienceCustomerIONode`);
  return v;
};
const base = env('SWITCHBOARD_URL');
const track = new TrackClient(env('SWITCHBOARD_SITE_ID'), env('SWITCHBOARD_TRACK_KEY'), { url: `${base}/api/v1` });
const api = new APIClient(env('SWITCHBOARD_APP_KEY'), { url: `${base}/v1` });
const noRetry = new APIClient(env('SWITCHBOARD_APP_KEY'), { url: `${base}/v1`, retry: { maxRetries: 0 } });
const [byIds, byData, byFilter, byAttributes] = env('SWITCHBOARD_BROADCASTS').split(',').map(Number);

async function attributes(id) {
  const res = await fetch(`${base}/v1/customers/${encodeURIComponent(id)}/attributes`, {
    headers: { authorization: `Bearer ${env('SWITCHBOARD_APP_KEY')}` },
  });
  assert.equal(res.status, 200);
  return (await res.json()).customer;
}

async function waitDone(broadcast, trigger) {
  for (let i = 0; i < 600; i++) {
    const st = await api.getBroadcastTriggerStatus(broadcast, trigger);
    if (st.done) return st;
    // Inside the App API's read limit (10 per second per key).
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`trigger ${trigger} did not finish`);
}

test('identify creates and updates people with channel identities', async () => {
  await track.identify('ann', { email: 'ann@example.com', first_name: 'Ann', likes_baseball: true, _identities: { news: 'ann' } });
  await track.identify('bob', { email: 'bob@example.com', first_name: 'Bob', likes_baseball: false, _identities: { news: 'bob' } });
  await track.identify('bob', { plan: 'pro' });
  const bob = await attributes('bob');
  assert.equal(bob.email, 'bob@example.com');
  assert.deepEqual(bob.attributes, { first_name: 'Bob', likes_baseball: false, plan: 'pro' });
  assert.deepEqual(bob._identities, { 'media-news': 'bob' });
});

test('triggerBroadcast with ids, per_user_data and a recipients filter', async () => {
  const a = await api.triggerBroadcast(byIds, { headline: 'ids' }, { ids: ['ann', 'bob'] });
  assert.equal(typeof a.id, 'number');
  const b = await api.triggerBroadcast(byData, { headline: 'users' }, {
    per_user_data: [{ id: 'ann', data: { voucher_code: 'A1' } }, { email: 'bob@example.com', data: { voucher_code: 'B2' } }],
  });
  const c = await api.triggerBroadcast(byFilter, { headline: 'filter' }, {
    and: [{ attribute: { field: 'first_name', operator: 'exists' } }, { attribute: { field: 'likes_baseball', operator: 'eq', value: true } }],
  });
  for (const [broadcast, trigger, sent] of [[byIds, a.id, 2], [byData, b.id, 2], [byFilter, c.id, 1]]) {
    const st = await waitDone(broadcast, trigger);
    assert.equal(st.status, 'processed');
    assert.equal(st.broadcast_id, broadcast);
    assert.equal(st.counts.sent, sent);
  }
});

test('people identified with attributes only are reached at customer.id and customer.phone', async () => {
  // As someone moving from Customer.io has them: no _identities.
  await track.identify('cal', { email: 'cal@example.com', first_name: 'Cal', phone: '+15550000003', cohort: 'new' });
  await track.identify('dee', { email: 'dee@example.com', first_name: 'Dee', cohort: 'new' });
  const t = await api.triggerBroadcast(byAttributes, { headline: 'attributes' }, {
    and: [{ attribute: { field: 'first_name', operator: 'exists' } }, { attribute: { field: 'cohort', operator: 'eq', value: 'new' } }],
  });
  const st = await waitDone(byAttributes, t.id);
  assert.equal(st.status, 'processed');
  assert.equal(st.counts.matched, 2);
  assert.equal(st.counts.sent, 3); // both on the webhook, Cal by SMS
  assert.deepEqual(st.counts.skipped_by_reason, { no_address: 1 });
  const res = await fetch(`${base}/v1/campaigns/${byAttributes}/triggers/${t.id}/errors`, {
    headers: { authorization: `Bearer ${env('SWITCHBOARD_APP_KEY')}` },
  });
  assert.deepEqual((await res.json()).errors, ['person dee: action 1: skipped, no_address: customer.phone is empty']);
});

test('errors come back as CustomerIORequestError with the errors envelope', async () => {
  // One trigger per broadcast per interval: the second one is refused.
  await assert.rejects(noRetry.triggerBroadcast(byIds, { headline: 'again' }, { ids: ['ann'] }), (err) => {
    assert.ok(err instanceof CustomerIORequestError);
    assert.equal(err.statusCode, 429);
    const h = err.response.headers;
    const retryAfter = typeof h.get === 'function' ? h.get('retry-after') : h['retry-after'];
    assert.ok(Number(retryAfter) > 0, `Retry-After ${retryAfter}`);
    assert.equal(JSON.parse(err.body).errors[0].status, '429');
    return true;
  });
  await assert.rejects(api.triggerBroadcast(999999, {}, { ids: ['ann'] }), (err) => err.statusCode === 404);
});

test('a cio_ identifier changes a person\'s id and email, tracks and deletes', async () => {
  await track.identify('carl', { email: 'carl@example.com', _identities: { news: 'carl' } });
  const cio = (await attributes('carl')).cio_id;
  assert.match(cio, /^[0-9a-f]{16}$/);
  await track.identify(`cio_${cio}`, { id: 'carl-2', email: 'carl@new.example' });
  const carl = await attributes('carl-2');
  assert.equal(carl.cio_id, cio);
  assert.equal(carl.email, 'carl@new.example');
  assert.deepEqual(carl._identities, { 'media-news': 'carl' });
  await track.track(`cio_${cio}`, { name: 'purchase', data: { sku: 'x' } });
  await assert.rejects(track.identify('cio_ffffffffffffffff', { plan: 'pro' }), (err) => err.statusCode === 404);
  await track.destroy(`cio_${cio}`);
  const gone = await fetch(`${base}/v1/customers/carl-2/attributes`, {
    headers: { authorization: `Bearer ${env('SWITCHBOARD_APP_KEY')}` },
  });
  assert.equal(gone.status, 404);
});
