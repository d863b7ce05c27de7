// Public result pages and the ranking board, end to end: an app stores
// result messages (user, message, score, emotions, a photo in Harvest
// Files) on App/results; a public dashboard shows one user's result
// without login at /p/<operatorId>/results-page?user=…[&message=…] (also
// as LINE's LIFF opens it, ?liff.state=…), on a phone-sized screen with
// its photo from a signed URL; the logged-in console shows the ranking and
// gallery board, and a result sent while it is open reaches both panels by
// push, without a reload. The app's graph draws its onError edge.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startNagare, launch, newPage, login, shot, waitFor, repo, shared } from './harness.mjs';

const vision = path.join(shared, 'testdata', 'vision');
const fixture = (f) => fs.readFileSync(path.join(repo, 'web/e2e/fixtures', f), 'utf8');

// Stored before the pages open, oldest first.
const results = [
  { userId: 'U1', messageId: 'm1', score: 120.5, emotions: { HAPPY: 120.5, SAD: 2 }, image: '/photos/a.jpg', name: 'Aki' },
  { userId: 'U2', messageId: 'm2', score: 200, emotions: { HAPPY: 200, SAD: 12.25 }, image: '/photos/b.jpg', name: 'Ben' },
  { userId: 'U1', messageId: 'm3', score: 80, emotions: { SAD: 5, HAPPY: 80, SURPRISED: 10 }, image: '/photos/b.jpg', name: 'Aki' },
  { userId: 'U3', messageId: 'm4', score: 150, emotions: { HAPPY: 150, CALM: 40 }, image: '/photos/a.jpg', name: 'Chie' },
];
// Sent while the board is open: Aki's new best.
const liveResult = { userId: 'U1', messageId: 'm5', score: 300, emotions: { HAPPY: 300 }, image: '/photos/a.jpg', name: 'Aki' };

let n, browser, op;

/** send runs one result through the app and returns the stored entry's time. */
async function send(result) {
  const run = await n.api('POST', '/v1/flux/apps/public-results/channels/results/test?timeout=30', result);
  assert.equal(run.status, 'succeeded', JSON.stringify(run).slice(0, 2000));
  const [e] = await n.api('GET', '/v1/data/App/results?limit=1');
  assert.equal(JSON.parse(e.content).messageId, result.messageId);
  // Harvest keys entries by time: keep the next one on a later millisecond.
  await new Promise((r) => setTimeout(r, 5));
  return e.time;
}

before(async () => {
  n = await startNagare();
  op = n.session.operatorId;
  browser = await launch();
  const photos = { 'a.jpg': 'stock-emotions-a-1.jpg', 'b.jpg': 'stock-emotions-a-2.jpg' };
  for (const [name, src] of Object.entries(photos)) {
    await n.api('PUT', `/v1/files/private/photos/${name}`, fs.readFileSync(path.join(vision, src)), { contentType: 'image/jpeg' });
  }
  await n.api('PUT', '/v1/flux/apps/public-results', fixture('public-results-app.yaml'), { contentType: 'application/yaml' });
  for (const r of results) await send(r);
  await n.api('PUT', '/v1/dashboards/results-page', fixture('public-results-page.yaml'), { contentType: 'application/yaml' });
  await n.api('PUT', '/v1/dashboards/results-board', fixture('public-results-board.yaml'), { contentType: 'application/yaml' });
});
after(async () => {
  await browser?.close();
  await n?.stop();
});

/** phone opens a page as a phone would, in a fresh context: no session, nothing shared with the console. */
async function phone() {
  const ctx = await browser.newContext({ viewport: { width: 375, height: 740 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'ja-JP', timezoneId: 'Asia/Tokyo' });
  const page = await ctx.newPage();
  page.errors = [];
  page.requests = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && page.errors.push(m.text()));
  page.on('request', (r) => page.requests.push(r));
  return page;
}

/** result reads what the public result page shows. */
async function result(page) {
  await page.getByTestId('public-dashboard').waitFor();
  const img = page.locator('[data-testid="panel-0"] [data-testid="image"]');
  await waitFor(() => img.evaluate((el) => el.complete && el.naturalWidth > 0), 15_000, 'the photo loaded');
  return {
    title: await page.locator('.dash-head h1').innerText(),
    photo: await img.evaluate((el) => ({ src: el.currentSrc, width: el.naturalWidth, shownWidth: el.getBoundingClientRect().width })),
    score: await page.locator('[data-testid="panel-1"] [data-testid="stat-value"]').innerText(),
    bars: await page.locator('[data-testid="panel-2"] [data-testid="bar"]').evaluateAll((els) => els.map((el) => [el.dataset.name, Number(el.dataset.value)])),
  };
}

const pageURL = (q) => `${n.base}/p/${op}/results-page${q}`;

test('the public page shows one user result without login, on a phone', async () => {
  const page = await phone();
  await page.goto(pageURL('?user=U1'));
  const newest = await result(page);
  assert.equal(newest.title, 'あなたの結果 (Your result)');
  assert.equal(newest.score, '80.0');
  assert.deepEqual(newest.bars, [
    ['HAPPY', 80],
    ['SURPRISED', 10],
    ['SAD', 5],
  ]);
  assert.ok(newest.photo.width > 0);
  // The photo comes from a signed URL, not the authenticated Files API.
  assert.ok(!new URL(newest.photo.src).pathname.startsWith('/v1/files/'), newest.photo.src);
  const m3Photo = newest.photo.src;
  // One column on a phone: panels full width, in reading order, no sideways scroll.
  const boxes = await page.locator('.dash-panel').evaluateAll((els) => els.map((el) => ({ i: el.dataset.testid, ...el.getBoundingClientRect().toJSON() })));
  assert.deepEqual(
    boxes.map((b) => b.i),
    ['panel-0', 'panel-1', 'panel-2'],
  );
  for (const b of boxes) assert.ok(b.width > 330 && b.x >= 0 && b.x + b.width <= 375, JSON.stringify(b));
  for (let i = 1; i < boxes.length; i++) assert.ok(boxes[i].y >= boxes[i - 1].y + boxes[i - 1].height, 'stacked');
  assert.ok(newest.photo.shownWidth <= 375);
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), 375);
  // Nothing of the console: no login form, no navigation, no session, no live socket.
  assert.equal(await page.locator('nav.side').count(), 0);
  assert.equal(await page.getByLabel('Password').count(), 0);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  assert.ok(!page.requests.some((r) => r.url().includes('/v1/live') || r.headers()['x-soracom-token']), 'no API session used');
  await shot(page, 'public-result-phone');

  // The older message by its id.
  await page.goto(pageURL('?user=U1&message=m1'));
  const older = await result(page);
  assert.equal(older.score, '120.5');
  assert.deepEqual(older.bars, [
    ['HAPPY', 120.5],
    ['SAD', 2],
  ]);
  assert.notEqual(older.photo.src, m3Photo, 'another photo');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('LIFF: the params come from liff.state', async () => {
  const page = await phone();
  // LINE opens the endpoint URL with the original query in liff.state.
  await page.goto(pageURL('?liff.state=' + encodeURIComponent('?user=U1&message=m1')));
  assert.equal((await result(page)).score, '120.5');
  // … or with the path as well.
  await page.goto(pageURL('?liff.state=' + encodeURIComponent(`/p/${op}/results-page?user=U2`)));
  const u2 = await result(page);
  assert.equal(u2.score, '200.0');
  assert.deepEqual(u2.bars[0], ['HAPPY', 200]);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('a missing required param and an unknown page say so', async () => {
  const page = await phone();
  await page.goto(pageURL(''));
  const err = page.getByTestId('public-error');
  await err.waitFor();
  assert.equal(await err.getAttribute('data-status'), '400');
  assert.match(await err.innerText(), /needs the parameter user \(\?user=…\)/);
  assert.equal(await page.locator('.dash-panel').count(), 0);
  await shot(page, 'public-result-missing-param');

  await page.goto(`${n.base}/p/${op}/no-such-page?user=U1`);
  await err.waitFor();
  assert.equal(await err.getAttribute('data-status'), '404');
  assert.match(await err.innerText(), /Page not found/);
  // A dashboard that is not public is not found either.
  await page.goto(`${n.base}/p/${op}/results-board`);
  await waitFor(async () => (await err.getAttribute('data-status')) === '404', 10_000, 'the board is not public');
  // The browser logs the refused requests themselves; nothing else.
  assert.deepEqual(
    page.errors.filter((e) => !/Failed to load resource: the server responded with a status of (400|404)/.test(e)),
    [],
  );
  await page.context().close();
});

test('the console: params from the hash, the public link, the missing-param message', async () => {
  const page = await newPage(browser);
  await login(page, n.base);
  await page.evaluate(() => (location.hash = '#/dashboards/results-page'));
  await page.getByTestId('needs-params').waitFor();
  assert.equal(await page.getByTestId('needs-params').innerText(), 'This page needs ?user=…');
  await page.evaluate(() => (location.hash = '#/dashboards/results-page?user=U1&message=m1'));
  const stat = page.locator('[data-testid="panel-1"] [data-testid="stat-value"]');
  await waitFor(async () => (await stat.innerText()) === '120.5', 10_000, 'U1 m1 in the console');
  const bars = await page.locator('[data-testid="panel-2"] [data-testid="bar"]').evaluateAll((els) => els.map((el) => el.dataset.name));
  assert.deepEqual(bars, ['HAPPY', 'SAD']);
  const link = page.getByTestId('public-link');
  assert.equal(await link.getAttribute('href'), `${n.base}/p/${op}/results-page?user=U1&message=m1`);
  // The params stay in the address with the view's own (range, kiosk).
  await page.getByRole('link', { name: 'Kiosk' }).click();
  await page.getByRole('link', { name: 'Exit kiosk' }).waitFor();
  assert.match(await page.evaluate(() => location.hash), /^#\/dashboards\/results-page\?user=U1&message=m1&kiosk=1$/);
  assert.equal(await stat.innerText(), '120.5');
  assert.deepEqual(page.errors, []);
  await page.close();
});

/** rows reads the ranking: [rank, label, value] per row. */
const rows = (page) =>
  page.locator('[data-testid="ranking"] li').evaluateAll((els) => els.map((el) => [Number(el.dataset.rank), el.dataset.label, Number(el.dataset.value)]));

test('the ranking board orders users by their best score and updates live', async () => {
  const page = await newPage(browser);
  await page.setViewportSize({ width: 1280, height: 720 });
  let loads = 0;
  page.on('load', () => loads++);
  await login(page, n.base);
  await page.evaluate(() => (location.hash = '#/dashboards/results-board?kiosk=1'));
  await page.locator('.dash[data-live="live"]').waitFor();
  await waitFor(async () => (await rows(page)).length === 3, 10_000, 'three ranked users');
  assert.deepEqual(await rows(page), [
    [1, 'Ben', 200],
    [2, 'Chie', 150],
    [3, 'Aki', 120.5],
  ]);
  assert.equal(await page.locator('[data-testid="ranking"] li').first().locator('.dash-rank-value').innerText(), '200.0 pt');
  // Medals: the first three ranks look different.
  const medals = await page.locator('[data-testid="ranking"] .dash-rank-no').evaluateAll((els) => els.map((el) => getComputedStyle(el).backgroundImage));
  assert.equal(new Set(medals).size, 3, medals.join('\n'));
  // Thumbnails from Files, loaded.
  await waitFor(
    () => page.locator('[data-testid="ranking"] img').evaluateAll((els) => els.length === 3 && els.every((el) => el.complete && el.naturalWidth > 0)),
    15_000,
    'ranking thumbnails',
  );
  // The gallery: newest first, one card per result.
  const cards = page.getByTestId('gallery-card');
  assert.equal(await cards.count(), results.length);
  const times = await cards.evaluateAll((els) => els.map((el) => Number(el.dataset.time)));
  assert.deepEqual(times, [...times].sort((a, b) => b - a));
  assert.match(await cards.first().innerText(), /Chie\s+150\.0/);
  await shot(page, 'results-board');

  // A new best for Aki while the page is open: it arrives by push.
  await page.evaluate(() => (window.__sameDocument = true));
  const loadsBefore = loads;
  const t = await send(liveResult);
  await waitFor(async () => (await rows(page))[0]?.[1] === 'Aki', 10_000, 'Aki first');
  assert.deepEqual(await rows(page), [
    [1, 'Aki', 300],
    [2, 'Ben', 200],
    [3, 'Chie', 150],
  ]);
  // The row that just arrived is highlighted.
  assert.equal(await page.locator('[data-testid="ranking"] li').first().getAttribute('data-fresh'), '1');
  await waitFor(async () => Number(await cards.first().getAttribute('data-time')) === t, 10_000, 'the new card first');
  assert.equal(await cards.count(), results.length + 1);
  await shot(page, 'results-board-live');
  assert.equal(loads, loadsBefore, 'no reload');
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the same document');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test("the app graph draws the store action's onError edge", async () => {
  const page = await newPage(browser);
  await login(page, n.base);
  await page.evaluate(() => (location.hash = '#/apps/public-results'));
  await page.locator('svg.flow-graph').waitFor();
  const edge = page.getByTestId('edge-action-store-channel-failed-onerror');
  assert.equal(await edge.getAttribute('data-edge-kind'), 'error');
  // One line of the label per option.
  assert.deepEqual(await edge.locator('tspan').allTextContents(), ['on error', 'delay 1s', 'transform']);
  const style = await edge.locator('path').evaluate((el) => ({ stroke: getComputedStyle(el).stroke, dash: getComputedStyle(el).strokeDasharray }));
  assert.equal(style.stroke, 'rgb(212, 60, 60)');
  assert.notEqual(style.dash, 'none');
  // The failed channel is fed by the error edge only: no API entry drawn for it.
  assert.equal(await page.getByTestId('node-source-failed-api').count(), 0);
  await page.getByTestId('node-action-store').click();
  const panel = page.getByTestId('node-panel');
  await panel.getByRole('heading', { name: 'On error' }).waitFor();
  const text = await panel.innerText();
  assert.match(text, /On error\s+channel\s+failed\s+options\s+delay 1s · transform\s+transform/);
  await shot(page, 'app-graph-onerror');
  assert.deepEqual(page.errors, []);
  await page.close();
});
