// Seed 004 end to end in the browser: examples/happiness-bot as it is, a
// local fake of the LINE Messaging API (content, profile, reply — the
// documented shapes), signed webhooks with real photos from ../shared →
// faces analysed offline → Flex replies whose score is the stored result's
// → the console's live board shows each new result and the ranking without
// a reload → the public result page opens without login on a phone-sized
// screen. Also: an unsigned webhook is refused, a redelivery processed
// once, a corrupt image answered with the seed's friendly message.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startNagare, launch, newPage, login, shot, waitFor, repo, shared } from './harness.mjs';

const secret = 'c0ffee00c0ffee00c0ffee00c0ffee00';
const token = 'happiness-e2e-channel-access-token';
const sakura = 'U1b2c3d4e5f60718293a4b5c6d7e8f901';
const ren = 'U9f8e7d6c5b4a39281706f5e4d3c2b1a0';
let n, browser, line, lineURL;
const content = new Map(); // message ID → bytes
const profiles = new Map([
  [sakura, 'さくら'],
  [ren, 'れん'],
]);
const replies = []; // bodies of POST /v2/bot/message/reply

before(async () => {
  line = http.createServer((req, res) => {
    let chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const json = (status, v) => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(v));
      };
      if (req.headers.authorization !== `Bearer ${token}`) return json(401, { message: 'Authentication failed.' });
      let m;
      if (req.method === 'GET' && (m = req.url.match(/^\/v2\/bot\/message\/(\d+)\/content$/))) {
        const b = content.get(m[1]);
        if (!b) return json(404, { message: 'Not found' });
        res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': b.length });
        return res.end(b);
      }
      if (req.method === 'GET' && (m = req.url.match(/^\/v2\/bot\/profile\/(\w+)$/))) {
        const name = profiles.get(m[1]);
        return name ? json(200, { userId: m[1], displayName: name, language: 'ja' }) : json(404, { message: 'Not found' });
      }
      if (req.method === 'POST' && req.url === '/v2/bot/message/reply') {
        const body = JSON.parse(Buffer.concat(chunks).toString());
        replies.push({ at: Date.now(), body });
        return json(200, { sentMessages: body.messages.map((_, i) => ({ id: String(461230966842064897n + BigInt(i)), quoteToken: 'q' })) });
      }
      json(404, { message: 'Not found' });
    });
  });
  await new Promise((r) => line.listen(0, '127.0.0.1', r));
  lineURL = `http://127.0.0.1:${line.address().port}`;
  n = await startNagare({ extraArgs: [`--line-api-url=${lineURL}`, `--line-data-url=${lineURL}`] });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await n?.stop();
  line?.close();
});

function sign(body, key = secret) {
  return crypto.createHmac('sha256', key).update(body).digest('base64');
}

let eventNo = 0;
/** send posts a signed image-message webhook and returns its reply token. */
async function send(hook, user, messageId, { redeliver, unsigned, eventId } = {}) {
  eventNo++;
  const replyToken = crypto.randomBytes(16).toString('hex');
  const body = JSON.stringify({
    destination: 'U0c4c4c9b4a1e1e2f3a4b5c6d7e8f9a0b',
    events: [{
      type: 'message', mode: 'active', timestamp: Date.now(), webhookEventId: eventId || `01J0E2E${String(eventNo).padStart(19, '0')}`,
      deliveryContext: { isRedelivery: !!redeliver }, source: { type: 'user', userId: user }, replyToken,
      message: { type: 'image', id: messageId, quoteToken: 'q3Plxr4AgKd', contentProvider: { type: 'line' } },
    }],
  });
  const headers = { 'Content-Type': 'application/json' };
  if (!unsigned) headers['X-Line-Signature'] = sign(body);
  const r = await fetch(hook, { method: 'POST', headers, body });
  return { status: r.status, replyToken, sentAt: Date.now() };
}

function replyTo(replyToken) {
  return replies.filter((r) => r.body.replyToken === replyToken);
}

async function results() {
  const es = await n.api('GET', '/v1/data/App/happiness-bot?limit=100');
  return es.map((e) => JSON.parse(e.content));
}

test('happiness bot: LINE photo → faces → Flex reply → live board and result page', async () => {
  const { api } = n;
  await api('POST', '/v1/credentials/happiness-line', { type: 'line-channel', credentials: { channelSecret: secret, channelAccessToken: token } });
  for (const f of ['app.yaml', 'board.yaml', 'result.yaml']) {
    const src = fs.readFileSync(path.join(repo, 'examples/happiness-bot', f), 'utf8');
    const name = src.match(/^name: (\S+)/m)[1];
    await api('PUT', (src.includes('\npanels:') ? '/v1/dashboards/' : '/v1/flux/apps/') + name, src, { contentType: 'application/yaml' });
  }
  const app = await api('GET', '/v1/flux/apps/happiness-bot');
  const hook = app.channels.find((c) => c.name === 'line').webhookUrl;
  content.set('500000000000000001', fs.readFileSync(path.join(shared, 'testdata/vision/group-3.jpg')));
  content.set('500000000000000002', fs.readFileSync(path.join(shared, 'testdata/vision/group-1.jpg')));
  content.set('500000000000000003', Buffer.from('\xff\xd8\xff\xe0 this is not a JPEG', 'latin1'));

  // Unsigned: refused, nothing happens.
  const unsigned = await send(hook, sakura, '500000000000000001', { unsigned: true });
  assert.equal(unsigned.status, 401);

  // さくら's photo, then LINE redelivering the same event: one result.
  const first = await send(hook, sakura, '500000000000000001', { eventId: '01J0E2EFIRSTPHOTO000000000' });
  assert.equal(first.status, 200);
  assert.equal((await send(hook, sakura, '500000000000000001', { eventId: '01J0E2EFIRSTPHOTO000000000', redeliver: true })).status, 200);
  await waitFor(() => replyTo(first.replyToken).length > 0, 60_000, 'the first reply');
  const firstMs = replyTo(first.replyToken)[0].at - first.sentAt;
  let rs = await results();
  assert.equal(rs.length, 1);
  const r1 = rs[0];
  assert.equal(r1.displayName, 'さくら');
  assert.ok(r1.faces >= 3 && r1.score > 100, `faces ${r1.faces} score ${r1.score}`);
  const flex = replyTo(first.replyToken)[0].body.messages[0];
  assert.equal(flex.type, 'flex');
  assert.ok(JSON.stringify(flex.contents).includes(`幸福度${r1.score}pt！！`), JSON.stringify(flex.contents));

  // The board, logged in, as on the projector.
  const page = await newPage(browser);
  await page.setViewportSize({ width: 1280, height: 720 });
  await login(page, n.base);
  await page.goto(`${n.base}/#/dashboards/happiness-board?kiosk=1`);
  const ranking = page.locator('[data-rank]');
  await waitFor(async () => (await ranking.count()) >= 2, 30_000, 'the first ranking rows'); // both ranking panels
  assert.equal(await page.locator('[data-rank="1"][data-label="さくら"]').count(), 2);
  await page.evaluate(() => (window.__noReload = true));

  // れん's photo arrives while the board is open.
  const second = await send(hook, ren, '500000000000000002');
  await waitFor(() => replyTo(second.replyToken).length > 0, 60_000, 'the second reply');
  const secondMs = replyTo(second.replyToken)[0].at - second.sentAt;
  rs = await results();
  const r2 = rs.find((r) => r.userId === ren);
  assert.ok(r2, 'れん stored');
  const leader = r2.score > r1.score ? 'れん' : 'さくら';
  await waitFor(async () => (await page.locator('[data-label="れん"][data-rank]').count()) >= 2, 30_000, 'れん on the board');
  await waitFor(async () => (await page.locator(`[data-rank="1"][data-label="${leader}"]`).count()) === 2, 10_000, 'the new ranking');
  assert.equal(await page.evaluate(() => window.__noReload), true, 'the board did not reload');
  const cards = page.locator('[data-time]');
  assert.equal(await cards.count(), 2, 'two photos in the gallery');
  await shot(page, 'happiness-board');

  // A corrupt image: the friendly reply; nothing stored.
  const bad = await send(hook, ren, '500000000000000003');
  await waitFor(() => replyTo(bad.replyToken).length > 0, 60_000, 'the friendly reply');
  assert.deepEqual(replyTo(bad.replyToken)[0].body.messages, [{ type: 'text', text: '画像がうまく読み込めませんでした。' }]);
  assert.equal((await results()).length, 2);
  assert.equal(replyTo(first.replyToken).length, 1, 'the redelivery did not reply again');
  assert.deepEqual(page.errors, []);

  // The result page the Flex button opens, without login, on a phone.
  const uri = flex.contents.footer.contents[0].action.uri;
  assert.ok(uri.startsWith(`${n.base}/p/${n.session.operatorId}/happiness-result?user=${sakura}&message=500000000000000001`), uri);
  const ctx = await browser.newContext({ viewport: { width: 375, height: 740 } });
  const phone = await ctx.newPage();
  const phoneErrors = [];
  phone.on('pageerror', (e) => phoneErrors.push(String(e)));
  phone.on('console', (m) => m.type() === 'error' && phoneErrors.push(m.text()));
  await phone.goto(uri);
  await phone.getByText(String(r1.score), { exact: false }).first().waitFor({ timeout: 20_000 });
  await waitFor(async () => phone.evaluate(() => [...document.images].some((i) => i.complete && i.naturalWidth > 0)), 20_000, 'the photo');
  await shot(phone, 'happiness-result-phone');
  assert.deepEqual(phoneErrors, []);
  await ctx.close();

  console.log(`webhook → reply: ${firstMs} ms (first photo, group-3), ${secondMs} ms (group-1)`);
});
