// The console's resource pages against a real server: a group and a device
// made in the UI, data published over HTTP showing in the list and live on
// the device page, a real JPEG uploaded to Files and previewed, a
// credential whose value never reaches the page, a SAM user with a
// permission document, and a camera on a simulated RTSP stream of real
// footage (snapshot, recorded period, exported still).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startNagare, launch, newPage, login, shot, waitFor, repo, shared, freePort } from './harness.mjs';

let n, browser;
before(async () => {
  n = await startNagare();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await n?.stop();
});

/** publish sends one entry as the device does: its secret, no API token. */
async function publish(id, secret, body) {
  const r = await fetch(`${n.base}/v1/devices/${encodeURIComponent(id)}/publish?device_secret=${encodeURIComponent(secret)}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(r.status, 201, await r.text());
}

/** loaded resolves once an <img> has decoded a picture. */
function loaded(img, ms = 30_000, what = 'image') {
  return waitFor(() => img.evaluate((el) => el.complete && el.naturalWidth > 0), ms, what);
}

test('groups and devices: register in the UI, publish, latest data, live entries', async () => {
  const page = await newPage(browser);
  await login(page, n.base);

  // A group with Harvest Data on (the create form's default).
  await page.goto(n.base + '/#/groups');
  await page.getByRole('button', { name: 'Create group' }).click();
  const gform = page.getByRole('form', { name: 'Create group' });
  await gform.getByLabel('Name').fill('e2e-lab');
  await gform.getByRole('button', { name: 'Create' }).click();
  await page.waitForURL(/#\/groups\/.+/);
  assert.equal(await page.getByRole('checkbox', { name: /Harvest Data enabled/ }).isChecked(), true);

  // Register a device in it; the secret is on screen once.
  await page.goto(n.base + '/#/devices');
  await page.getByRole('button', { name: 'Register device' }).click();
  const form = page.getByRole('form', { name: 'Register device' });
  await form.getByLabel('Name').fill('e2e-sensor');
  await form.getByLabel('Group', { exact: true }).selectOption({ label: 'e2e-lab' });
  await form.getByRole('button', { name: 'Register' }).click();
  const dialog = page.getByRole('dialog', { name: 'Device registered' });
  await dialog.getByText('shown only once').waitFor();
  const secret = (await dialog.getByTestId('secret-value').innerText()).trim();
  const id = (await dialog.locator('a.mono').innerText()).trim();
  assert.match(id, /^d-/);
  assert.ok(secret.length > 10, secret);

  await publish(id, secret, { temperature: 20.5, seq: 1 });
  await publish(id, secret, { temperature: 21.5, seq: 2 });
  await dialog.getByRole('button', { name: 'Done' }).click();

  const row = page.locator('tr', { has: page.getByRole('link', { name: 'e2e-sensor' }) });
  await row.getByTestId('latest-data').filter({ hasText: '"seq":2' }).waitFor();
  assert.match(await row.innerText(), /e2e-lab/);
  await shot(page, 'devices');

  // The device page: both entries, then a third pushed over /v1/live.
  await row.getByRole('link', { name: 'e2e-sensor' }).click();
  await page.waitForURL(/#\/devices\/d-/);
  const entries = page.getByRole('table', { name: 'Data entries' });
  await entries.getByText('"seq":2').waitFor();
  await entries.getByText('"seq":1').waitFor();
  // Pushes start once the server has confirmed the subscription.
  await page.locator('[data-subscribed="yes"] [data-live-status="live"]').waitFor();
  await page.evaluate(() => (window.__sameDocument = true));
  await publish(id, secret, { temperature: 22.5, seq: 3 });
  await entries.locator('tr.fresh', { hasText: '"seq":3' }).waitFor({ timeout: 10_000 });
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was reloaded');
  const firstRow = await entries.locator('tbody tr').first().innerText();
  assert.match(firstRow, /"seq":3/, 'newest first');

  // Tags are edited in place.
  await page.getByLabel('Tag name', { exact: true }).fill('site');
  await page.getByLabel('Tag value', { exact: true }).fill('tokyo');
  await page.getByRole('button', { name: 'Add tag' }).click();
  await page.getByRole('button', { name: 'Remove tag site' }).waitFor();
  assert.equal((await n.api('GET', `/v1/devices/${id}`)).tags.site, 'tokyo');
  await shot(page, 'device-live');

  // The group page lists the device as a member.
  await page.getByRole('link', { name: 'e2e-lab' }).first().click();
  await page.getByRole('table', { name: 'Members' }).getByText('e2e-sensor').waitFor();
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('files: upload a JPEG and a text file, thumbnail and preview', async () => {
  const page = await newPage(browser);
  await login(page, n.base);
  await page.goto(n.base + '/#/files');
  await page.getByLabel('Sub-folder').fill('e2e-photos');
  await page.getByLabel('Files to upload').setInputFiles([
    { name: 'group-3.jpg', mimeType: 'image/jpeg', buffer: fs.readFileSync(path.join(shared, 'testdata/vision/group-3.jpg')) },
    { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello from the e2e test\n') },
  ]);
  await waitFor(async () => (await page.locator('.upload-list li.done').count()) === 2, 30_000, 'both uploads');
  await page.getByRole('link', { name: 'e2e-photos/' }).click();
  await page.waitForURL(/#\/files\/e2e-photos$/);

  const jpeg = page.locator('tr[data-file="group-3.jpg"]');
  assert.match(await jpeg.innerText(), /image\/jpeg/);
  await loaded(jpeg.locator('img'), 30_000, 'thumbnail');
  assert.match(await page.locator('tr[data-file="notes.txt"]').innerText(), /text\/plain/);

  await jpeg.getByRole('button', { name: 'group-3.jpg' }).click();
  const dialog = page.getByRole('dialog', { name: '/e2e-photos/group-3.jpg' });
  await loaded(dialog.locator('img'), 30_000, 'preview');
  const [w, h] = await dialog.locator('img').evaluate((el) => [el.naturalWidth, el.naturalHeight]);
  assert.ok(w > 100 && h > 100, `preview ${w}x${h}`);
  await shot(page, 'files-preview');
  await dialog.getByRole('button', { name: 'Close' }).click();

  await page.locator('tr[data-file="notes.txt"]').getByRole('button', { name: 'notes.txt' }).click();
  await page.getByRole('dialog', { name: '/e2e-photos/notes.txt' }).getByText('hello from the e2e test').waitFor();
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('credentials: the value never reaches the page', async () => {
  const value = 'e2e-never-shown-' + Date.now();
  const page = await newPage(browser);
  await login(page, n.base);
  await page.goto(n.base + '/#/credentials');
  const form = page.getByRole('form', { name: 'New credential' });
  await form.getByLabel('ID', { exact: true }).fill('e2e-token');
  await form.getByLabel('Type', { exact: true }).selectOption('api-token-credentials');
  await form.getByLabel('Description').fill('token for the e2e test');
  await form.getByLabel('Token', { exact: true }).fill(value);
  await form.getByRole('button', { name: 'Create' }).click();
  const row = page.locator('tr[data-credential="e2e-token"]');
  await row.waitFor();
  assert.match(await row.innerText(), /api-token-credentials/);
  assert.match(await row.innerText(), /token for the e2e test/);
  // The form dropped the value, and nothing on the page holds it.
  assert.equal(await form.getByLabel('Token', { exact: true }).inputValue(), '');
  assert.ok(!(await page.content()).includes(value), 'credential value in the page');
  assert.ok(!(await page.evaluate(() => document.body.innerText)).includes(value));
  const stored = await n.api('GET', '/v1/credentials/e2e-token');
  assert.deepEqual(stored.credentials, {});
  await shot(page, 'credentials');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('users: create a SAM user, set its permission document and an auth key', async () => {
  const page = await newPage(browser);
  await login(page, n.base);
  await page.goto(n.base + '/#/users');
  await page.getByRole('button', { name: 'Create user' }).click();
  const form = page.getByRole('form', { name: 'Create user' });
  await form.getByLabel('User name').fill('e2e-bot');
  await form.getByLabel('Description').fill('made by the e2e test');
  await form.getByRole('button', { name: 'Create' }).click();
  await page.waitForURL(/#\/users\/e2e-bot$/);

  const editor = page.getByLabel('Permission document', { exact: true });
  const save = page.locator('.perm-editor').getByRole('button', { name: 'Save' });
  // An invalid document: the API refuses it (400) and the page shows why.
  // Chromium logs every 4xx answer as a console error; this one is expected.
  const before = page.errors.length;
  await editor.fill('{"statements":[{"effect":"maybe","api":"Device:*"}]}');
  await save.click();
  const alert = page.locator('.perm-editor [role=alert]');
  await alert.waitFor();
  assert.match(await alert.innerText(), /BAD0002/);
  const expected = page.errors.splice(before);
  assert.ok(expected.length === 1 && /status of 400/.test(expected[0]), `console errors: ${expected}`);

  const doc = { statements: [{ effect: 'allow', api: ['Device:*', 'DataEntry:getDataEntries'] }] };
  await editor.fill(JSON.stringify(doc));
  await save.click();
  await page.locator('.perm-editor').getByText('Saved.').waitFor();
  const stored = await n.api('GET', `/v1/operators/${n.session.operatorId}/users/e2e-bot/permission`);
  assert.deepEqual(JSON.parse(stored.permission), doc);

  await page.getByRole('form', { name: 'Set password' }).getByLabel('Password').fill('e2e-user-password-1');
  await page.getByRole('button', { name: 'Set password' }).click();
  await page.getByText('password set', { exact: true }).waitFor();

  await page.getByRole('button', { name: 'Generate auth key' }).click();
  const dialog = page.getByRole('dialog', { name: 'Auth key generated' });
  await dialog.getByText('shown only once').waitFor();
  const secret = (await dialog.getByTestId('secret-value').innerText()).trim();
  await dialog.getByRole('button', { name: 'Done' }).click();
  await page.getByRole('table', { name: 'Auth keys' }).locator('tbody tr').first().waitFor();
  assert.ok(!(await page.content()).includes(secret), 'auth key secret still on the page');
  await shot(page, 'users');
  assert.deepEqual(page.errors, []);
  await page.close();
});

/**
 * simulateCamera runs `nagare camera simulate`: real footage (Debian's
 * vtest.avi, fetched and transcoded once into os.tmpdir()/nagare-fixtures,
 * as the Go camera tests do) served as H.264 over RTSP on loopback.
 */
async function simulateCamera() {
  const bin = process.env.NAGARE_BIN || path.join(repo, 'bin', 'nagare');
  const port = await freePort();
  const child = spawn(bin, ['camera', 'simulate', '-listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const url = await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`camera simulate exited (${child.exitCode}): ${out}`);
      return /serving (rtsp:\S+)/.exec(out)?.[1];
    },
    300_000,
    'the simulated camera',
  );
  return { url, stop: () => child.kill('SIGTERM') };
}

// ffmpeg comes with scripts/deps.sh; without it this test fails, not skips.
test('cameras: a simulated RTSP camera: snapshot, recording, exported still', async () => {
  const cam = await simulateCamera();
  try {
    const page = await newPage(browser);
    await login(page, n.base);
    await page.goto(n.base + '/#/cameras');
    await page.getByRole('button', { name: 'Register camera' }).click();
    const form = page.getByRole('form', { name: 'Register camera' });
    await form.getByLabel('Camera ID').fill('E2E-CAM');
    await form.getByLabel('Name', { exact: true }).fill('E2E lobby');
    await form.getByLabel('RTSP URL').fill(cam.url);
    await form.getByLabel('Record continuously').check();
    await form.getByRole('button', { name: 'Register' }).click();
    await page.waitForURL(/#\/cameras\/E2E-CAM$/);

    await loaded(page.getByTestId('snapshot'), 60_000, 'live snapshot');
    const [w, h] = await page.getByTestId('snapshot').evaluate((el) => [el.naturalWidth, el.naturalHeight]);
    assert.deepEqual([w, h], [640, 480]);

    // The recording shows on the timeline (it is re-read every 10 s).
    await page.getByTestId('recorded-period').first().waitFor({ timeout: 120_000 });

    await page.getByRole('button', { name: 'Export still' }).click();
    await page.locator('[data-export-status="completed"]').waitFor({ timeout: 90_000 });
    await loaded(page.getByRole('img', { name: 'Exported still' }), 30_000, 'exported still');
    await page.getByRole('table', { name: 'Exports' }).getByText('completed').waitFor();
    // On the 1 h axis the seconds-old recording is a visible bar.
    await page.getByRole('button', { name: '1 h' }).click();
    const bar = await page.getByTestId('recorded-period').first().boundingBox();
    assert.ok(bar && bar.width >= 2, `recorded period bar ${JSON.stringify(bar)}`);
    await shot(page, 'camera');
    assert.deepEqual(page.errors, []);
    await page.close();
  } finally {
    cam.stop();
  }
});
