// `nagare demo` end to end: one command brings every example system up;
// within a (shortened) timer period each produces visible results in the
// console, and every dashboard and board is screenshotted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startNagare, launch, newPage, login, shot, waitFor, shared } from './harness.mjs';

const period = '6s';
let n, browser, page;

before(async () => {
  // The guests' photos from ../shared (the tests run in web/, not the repository root).
  n = await startNagare({ command: 'demo', extraArgs: [`--period=${period}`, `--photos=${path.join(shared, 'testdata/vision')}`] });
  browser = await launch();
  page = await newPage(browser);
  await login(page, n.base);
});
after(async () => {
  await browser?.close();
  await n?.stop();
});

const rows = async (p, sel) => p.locator(sel).count();

test('demo: the welcome text names the console, the login and every system', async () => {
  await waitFor(() => n.log().includes('Stop with Ctrl-C'), 60_000, 'the welcome text');
  const out = n.log();
  for (const s of ['Console:', 'Log in:', 'demo-outbox', 'happiness-board', '#/boards']) assert.ok(out.includes(s), `welcome text lacks ${s}:\n${out}`);
});

test('demo: happiness bot — LINE guests, live ranking board, public result page', async () => {
  await page.goto(`${n.base}/#/dashboards/happiness-board?kiosk=1`);
  await waitFor(async () => (await rows(page, '[data-rank]')) >= 2, 90_000, 'ranking rows');
  await waitFor(async () => (await rows(page, '[data-time]')) >= 1, 30_000, 'gallery cards');
  await shot(page, 'demo-happiness-board');
  const [entry] = await n.api('GET', '/v1/data/App/happiness-bot?limit=1');
  const user = JSON.parse(entry.content).userId;
  const phone = await newPage(browser);
  await phone.setViewportSize({ width: 375, height: 740 });
  await phone.goto(`${n.base}/p/${n.session.operatorId}/happiness-result?user=${user}`);
  await phone.getByText('pt').first().waitFor({ timeout: 20_000 });
  await shot(phone, 'demo-happiness-result');
  assert.deepEqual(phone.errors, []);
  await phone.close();
});

test('demo: call button — presses, Slack mention in the outbox, the staff board moves', async () => {
  await page.goto(`${n.base}/#/boards`);
  await page.locator('[data-thing="tanaka"]').waitFor({ timeout: 30_000 });
  await waitFor(async () => (await rows(page, '[data-thing="tanaka"][data-state="calling"], [data-thing="tanaka"][data-state="running"]')) > 0, 90_000, 'tanaka called');
  await shot(page, 'demo-call-button-board');
});

test('demo: the outbox shows what Slack and LINE would have received', async () => {
  await page.goto(`${n.base}/#/dashboards/demo-outbox`);
  await waitFor(async () => {
    const text = await page.locator('main').innerText();
    return text.includes('slack') && text.includes('line') && text.includes('幸福度');
  }, 90_000, 'Slack and LINE messages in the outbox');
  await shot(page, 'demo-outbox');
  assert.deepEqual(page.errors, []);
});

test('demo: RTSP snapshot — the remote command stores snapshots in Files', async () => {
  // The Files page lists on load; wait for the first snapshot first.
  await waitFor(async () => (await n.api('GET', '/v1/files/private/camera/snapshots/')).length > 0, 60_000, 'a snapshot file');
  await page.goto(`${n.base}/#/files/camera/snapshots`);
  await waitFor(async () => page.evaluate(() => [...document.images].some((i) => i.complete && i.naturalWidth > 0)), 60_000, 'a snapshot thumbnail');
  await shot(page, 'demo-rtsp-snapshots');
  const n8942 = await page.getByText(/8942310022000012345_\d+\.jpg/).count();
  assert.ok(n8942 >= 1, 'snapshot files named like the seed');
});

test('demo: crowding monitor — camera stills counted offline, the crowding dashboard', async () => {
  await waitFor(async () => (await n.api('GET', '/v1/data/SoraCam/7CDDDEADBEEF?limit=5')).some((e) => JSON.parse(e.content).image_path), 120_000, 'a counted still');
  await page.goto(`${n.base}/#/dashboards/crowding`);
  await waitFor(async () => page.evaluate(() => [...document.images].some((i) => i.complete && i.naturalWidth > 0)), 30_000, 'the still on the dashboard');
  await waitFor(async () => (await page.locator('.uplot canvas, canvas').count()) > 0, 30_000, 'the chart');
  await shot(page, 'demo-crowding-dashboard');
  assert.deepEqual(page.errors, []);
});

test('demo: camera archive — stills land in the data lake, the runs succeed', async () => {
  await waitFor(async () => (await n.api('GET', '/v1/flux/apps/datalake-archive/runs?status=succeeded')).length > 0, 120_000, 'an archived still');
  const lake = path.join(n.data, 'datalake', 'soracam-images');
  const files = fs.readdirSync(lake, { recursive: true }).filter((f) => /^\d{4}\/\d{2}\/\d{2}\/soracam_\d{8}_\d{6}_\d{3}\.jpg$/.test(f));
  assert.ok(files.length >= 1, `archived files: ${fs.readdirSync(lake, { recursive: true })}`);
  await page.goto(`${n.base}/#/apps/datalake-archive`);
  await page.getByRole('tab', { name: 'Runs' }).or(page.getByRole('link', { name: 'Runs' })).or(page.getByRole('button', { name: 'Runs' })).first().click();
  await page.locator('[data-testid="runs-table"] tbody tr[data-status="succeeded"]').first().waitFor({ timeout: 20_000 });
  await shot(page, 'demo-datalake-runs');
  assert.deepEqual(page.errors, []);
});
