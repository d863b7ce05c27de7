// Seed 003 end to end: a button press (HTTP publish of an LTE-M Button
// payload) → the fake Slack Incoming Webhook receives the mention → the
// console's board, live over MQTT over WebSocket, shows "calling" → an
// Outgoing Webhook "ok" → "running" → nagare restarts → the (shortened)
// timer fires once → "idle". Then do-not-disturb turns a press into
// "unavailable" without a mention.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startNagare, launch, newPage, login, shot, waitFor, repo } from './harness.mjs';

const slackUser = 'U012AB3CD';
const slackToken = 'tok-outgoing-123';
let n, browser, slack, slackURL;
const posts = []; // what the fake Slack received

before(async () => {
  // Slack's Incoming Webhook: POST JSON {text, …} → 200 "ok".
  slack = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      posts.push(JSON.parse(body));
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
    });
  });
  await new Promise((r) => slack.listen(0, '127.0.0.1', r));
  slackURL = `http://127.0.0.1:${slack.address().port}/services/T000/B000/XXXX`;
  n = await startNagare();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await n?.stop();
  if (n?.data) fs.rmSync(n.data, { recursive: true, force: true });
  slack?.close();
});

async function setup() {
  const { api } = n;
  const group = await api('POST', '/v1/groups', { tags: { name: 'call-buttons' }, configuration: { SoracomHarvest: { enabled: true } } });
  const dev = await api('POST', '/v1/devices', { tags: { name: 'booth-1' } });
  await api('POST', `/v1/devices/${dev.device_id}/set_group`, { groupId: group.groupId });
  await api('POST', '/v1/credentials/call-button-slack', { type: 'slack-incoming-webhook', credentials: { url: slackURL } });
  await api('POST', '/v1/credentials/call-button-slack-token', { type: 'api-token-credentials', credentials: { token: slackToken } });
  const users = `/v1/operators/${n.session.operatorId}/users/call-button-bot`;
  await api('POST', users, { description: 'reads the call-button registry' });
  await api('PUT', users + '/permission', { permission: JSON.stringify({ statements: [{ effect: 'allow', api: ['Shadow:getThingShadow'] }] }) });
  await api('POST', '/v1/things/call-button-registry/shadow', {
    state: { reported: { buttons: { [dev.device_id]: 'tanaka' }, slackUsers: { [slackUser]: 'tanaka' } } },
  });
  await api('POST', '/v1/things/tanaka/shadow', { state: { reported: { name: '田中', slackUserId: slackUser, state: 'idle' } } });
  // The example app, with the buttons' group and shortened timers.
  const yaml = fs
    .readFileSync(path.join(repo, 'examples/call-button/app.yaml'), 'utf8')
    .replace('groupId: call-buttons', `groupId: ${group.groupId}`)
    .replaceAll('delay: 5m', 'delay: 12s')
    .replaceAll('delay: 1m', 'delay: 3s');
  await api('PUT', '/v1/flux/apps/call-button', yaml, { contentType: 'application/yaml' });
  const app = await api('GET', '/v1/flux/apps/call-button');
  const answerURL = app.channels.find((c) => c.name === 'answer').webhookUrl;
  assert.ok(answerURL, 'the answer channel has a secret URL');
  return { device: dev.device_id, secret: dev.deviceSecret, answerURL };
}

async function press(device, secret) {
  const r = await fetch(`${n.base}/v1/devices/${device}/publish`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Device-Secret': secret },
    body: JSON.stringify({ clickType: 1, clickTypeName: 'SINGLE', batteryLevel: 0.75, binaryParserEnabled: true }),
  });
  assert.equal(r.status, 201);
}

// Slack's legacy Outgoing Webhook: a form POST with the integration's token.
async function say(answerURL, text) {
  const word = text.split(' ')[0];
  const form = new URLSearchParams({ token: slackToken, team_id: 'T0001', channel_id: 'C2147483705', channel_name: 'duty',
    timestamp: String(Date.now() / 1000), user_id: slackUser, user_name: 'tanaka', text, trigger_word: word });
  const r = await fetch(new URL(new URL(answerURL).pathname, n.base), { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: form });
  assert.equal(r.status, 200, await r.text());
}

const card = (page) => page.locator('[data-thing="tanaka"]');
const stateIs = (page, s, timeout = 20_000) => page.locator(`[data-thing="tanaka"][data-state="${s}"]`).waitFor({ timeout });

test('press → Slack mention → calling; ok → running; restart; timer → idle', async () => {
  const { device, secret, answerURL } = await setup();
  const page = await newPage(browser);
  await login(page, n.base);
  await page.goto(n.base + '/#/boards');
  await stateIs(page, 'idle'); // read on load, over HTTP
  await page.locator('[data-mqtt="live"]').waitFor();
  await page.evaluate(() => (window.__sameDocument = true));

  await press(device, secret);
  const mention = await waitFor(() => posts.find((p) => p.text && p.text.includes(`<@${slackUser}>`)), 20_000, 'the Slack mention');
  assert.match(mention.text, /田中/);
  await stateIs(page, 'calling');
  await shot(page, 'board-calling');

  await say(answerURL, 'ok on my way');
  await stateIs(page, 'running');
  await shot(page, 'board-running');
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the board was reloaded');

  // Restart in the middle: the pending 12 s timer is in JetStream.
  await n.stop({ keep: true });
  n = await startNagare({ data: n.data, port: n.port, db: n.db, mqttPort: n.mqttPort });
  // The board reconnects by itself (same token, same port) and re-reads.
  await stateIs(page, 'idle', 40_000);
  await page.locator('[data-mqtt="live"]').waitFor();
  await shot(page, 'board-idle');
  const shadow = await n.api('GET', '/v1/things/tanaka/shadow');
  assert.equal(shadow.state.reported.state, 'idle');
  assert.equal(posts.filter((p) => p.text.includes(`<@${slackUser}>`)).length, 1, 'one mention for one press');
  // The timer fired once: no second idle update after it.
  const v = shadow.version;
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal((await n.api('GET', '/v1/things/tanaka/shadow')).version, v);

  // Do not disturb: a press says "unavailable" without mentioning anyone.
  await say(answerURL, 'dnd');
  await stateIs(page, 'dnd');
  const before = posts.length;
  await press(device, secret);
  const notice = await waitFor(() => posts.slice(before).find((p) => /unavailable/.test(p.text)), 20_000, 'the unavailable notice');
  assert.doesNotMatch(notice.text, /<@/);
  await stateIs(page, 'unavailable');
  await shot(page, 'board-unavailable');
  await stateIs(page, 'dnd'); // the shortened "settle" timer
  assert.deepEqual(page.errors, []);
  await page.close();
});
