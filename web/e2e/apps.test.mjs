// The Flow views: an app with an API-fed channel, a countdown loop, a
// Harvest write and a webhook that fails is applied over the API; the
// console then shows its graph (loop edge included), an action's config,
// the failed run's trace, and runs a test message from the Test tab.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNagare, launch, newPage, login, shot, waitFor } from './harness.mjs';

const appYAML = `name: e2e-flow
description: API input, a countdown loop, a Harvest write and a webhook that fails
channels:
  in:
    description: fed by API messages and test runs
    actions:
      - name: start
        condition: payload.skip != true
        republish: {}
        output:
          channel: count
          transform: {n: "\${payload.n}", device: "\${payload.device}"}
  count:
    description: counts down to zero, looping on itself
    actions:
      - name: countdown
        condition: payload.n > 0
        republish: {}
        output:
          channel: count
          delay: 1s
          transform: {n: "\${payload.n - 1}", device: "\${payload.device}"}
      - name: store
        condition: payload.n == 0
        harvest:
          resourceId: "\${payload.device}"
          data: {done: true, at: "\${now()}"}
        output: {channel: notify}
  notify:
    actions:
      - name: alert
        retries: 0
        timeout: 2s
        webhook:
          url: http://127.0.0.1:1/alert
          body: {device: "\${payload.resourceId}", token: not-a-real-one}
`;

let n, browser;
before(async () => {
  n = await startNagare();
  browser = await launch();
  await n.api('PUT', '/v1/flux/apps/e2e-flow', appYAML, { contentType: 'application/yaml' });
  // One run that fails at the webhook (after two loop passes), one that
  // succeeds because its first action's condition skips everything.
  const failed = await n.api('POST', '/v1/flux/apps/e2e-flow/channels/in/test?timeout=30', { n: 2, device: 'e2e-sensor' });
  assert.equal(failed.status, 'failed', JSON.stringify(failed));
  const ok = await n.api('POST', '/v1/flux/apps/e2e-flow/channels/in/test?timeout=30', { skip: true });
  assert.equal(ok.status, 'succeeded', JSON.stringify(ok));
});
after(async () => {
  await browser?.close();
  await n?.stop();
});

test('app list, graph with its loop, action config, failed run trace, test message', async () => {
  const page = await newPage(browser);
  await login(page, n.base);
  await page.goto(n.base + '/#/apps');

  // The list: enabled, counts, last run.
  const row = page.getByTestId('app-e2e-flow');
  await row.locator('.badge.succeeded').waitFor();
  assert.equal(await row.getByRole('checkbox').isChecked(), true);
  assert.match(await row.innerText(), /e2e-flow\s+API input.*\s+enabled\s+3\s+4\s+succeeded/);

  // The switch disables and re-enables the app.
  const enabled = row.getByRole('checkbox');
  await enabled.click();
  await row.getByText('disabled').waitFor();
  assert.equal((await n.api('GET', '/v1/flux/apps/e2e-flow')).enabled, false);
  await enabled.click();
  await row.getByText('enabled', { exact: true }).waitFor();
  assert.equal((await n.api('GET', '/v1/flux/apps/e2e-flow')).enabled, true);

  // The graph: every source, channel and action, and the loop.
  await row.getByRole('link', { name: 'e2e-flow' }).click();
  const svg = page.locator('svg.flow-graph');
  await svg.waitFor();
  for (const id of ['source-in-api', 'channel-in', 'channel-count', 'channel-notify', 'action-start', 'action-countdown', 'action-store', 'action-alert']) {
    assert.equal(await page.getByTestId('node-' + id).count(), 1, id);
  }
  assert.match(await page.getByTestId('node-action-store').textContent(), /HARVEST.*store.*if payload\.n == 0/);
  const loops = page.locator('[data-edge-kind="loop"]');
  assert.equal(await loops.count(), 1);
  assert.equal(await loops.getAttribute('data-testid'), 'edge-action-countdown-channel-count');
  assert.match(await loops.textContent(), /loop · delay 1s · transform/);
  assert.equal(await page.locator('[data-testid="edge-action-store-channel-notify"]').getAttribute('data-edge-kind'), 'output');
  assert.equal(await page.locator('[data-testid="edge-channel-count-action-store"]').getAttribute('data-edge-kind'), 'action');

  // Clicking an action shows its configuration; secret-looking values are masked.
  await page.getByTestId('node-action-store').click();
  const panel = page.getByTestId('node-panel');
  await panel.waitFor();
  const text = await panel.innerText();
  for (const want of ['store', 'HARVEST', 'payload.n == 0', 'resourceId', '${payload.device}', 'resourceType', 'Device', 'timeout', '10s', 'retries', 'notify']) {
    assert.ok(text.includes(want), `panel lacks ${want}:\n${text}`);
  }
  await shot(page, 'app-graph');
  await page.getByTestId('node-action-alert').click();
  await panel.locator('h2', { hasText: 'alert' }).waitFor();
  const alertText = await panel.innerText();
  assert.ok(alertText.includes('****') && !alertText.includes('not-a-real-one'), alertText);

  // Runs, filtered to the failed one, and its trace.
  await page.getByRole('link', { name: 'Runs', exact: true }).click();
  await page.getByTestId('runs-table').waitFor();
  assert.equal(await page.locator('[data-testid="runs-table"] tbody tr').count(), 2);
  await page.getByLabel('Status filter').selectOption('failed');
  await page.waitForFunction(() => location.hash.endsWith('?status=failed'));
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="runs-table"] tbody tr').length === 1);
  const failedRow = page.locator('[data-testid="runs-table"] tbody tr');
  assert.equal(await failedRow.getAttribute('data-status'), 'failed');
  assert.match(await failedRow.innerText(), /webhook POST/);
  await failedRow.click();
  const trace = page.getByTestId('run-trace');
  await trace.waitFor();
  assert.equal(await trace.getAttribute('data-status'), 'failed');
  const alert = page.getByTestId('step-alert');
  assert.equal(await alert.getAttribute('data-status'), 'failed');
  assert.match(await alert.locator('.step-error').innerText(), /127\.0\.0\.1:1.*(refused|connect)/);
  assert.match(await page.getByTestId('step-start').innerText(), /succeeded[\s\S]*condition: true/);
  const countdowns = page.getByTestId('step-countdown');
  assert.equal(await countdowns.count(), 3);
  assert.deepEqual(await countdowns.evaluateAll((els) => els.map((e) => e.dataset.status)), ['succeeded', 'succeeded', 'skipped']);
  assert.match(await countdowns.nth(2).innerText(), /condition: false \(skipped\)/);
  const stores = page.getByTestId('step-store');
  assert.deepEqual((await stores.evaluateAll((els) => els.map((e) => e.dataset.status))).sort(), ['skipped', 'skipped', 'succeeded']);
  // The run's path on the graph.
  assert.equal(await page.getByTestId('node-action-alert').getAttribute('data-status'), 'failed');
  assert.equal(await page.getByTestId('node-action-store').getAttribute('data-status'), 'succeeded');
  await alert.scrollIntoViewIfNeeded();
  await shot(page, 'app-run-failed-trace');

  // The YAML tab: the file as applied; a bad edit is reported with its line.
  await page.getByRole('link', { name: 'YAML', exact: true }).click();
  const editor = page.getByLabel('App YAML');
  await page.waitForFunction(() => (document.querySelector('textarea[aria-label="App YAML"]')?.value || '').startsWith('name: e2e-flow'));
  await editor.fill(appYAML.replace('retries: 0', 'retries: 0\n        retires: 2'));
  await page.getByRole('button', { name: 'Validate' }).click();
  assert.match(await page.getByRole('alert').innerText(), /\d+:\d+ .*unknown field "retires".*did you mean "retries"/);
  await page.getByRole('button', { name: 'Revert' }).click();
  await editor.fill(appYAML.replace('description: API input', 'description: Edited, API input'));
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('status').filter({ hasText: /Saved: version \d+/ }).waitFor();
  await page.locator('.app-meta', { hasText: 'Edited, API input' }).waitFor();

  // The Test tab: invalid JSON is caught before sending; a test run shows its trace.
  await page.getByRole('link', { name: 'Test', exact: true }).click();
  const payload = page.getByLabel('Payload (JSON)');
  await payload.fill('{"n": 1,');
  await page.getByTestId('json-problem').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Send test' }).isDisabled(), true);
  await payload.fill('{"n": 1, "device": "e2e-sensor"}');
  await page.getByRole('button', { name: 'Send test' }).click();
  const result = page.getByTestId('test-result');
  await result.getByTestId('run-trace').waitFor({ timeout: 40_000 });
  assert.equal(await result.getByTestId('run-trace').getAttribute('data-status'), 'failed');
  assert.match(await result.getByTestId('step-alert').innerText(), /failed[\s\S]*127\.0\.0\.1:1/);
  assert.equal(await result.getByTestId('step-countdown').count(), 2);
  await shot(page, 'app-test-message');

  // A fire-and-forget message links to its run, which the list then shows.
  await page.getByRole('button', { name: 'Send message' }).click();
  const sent = page.getByTestId('message-sent');
  await sent.waitFor();
  // Wait until the run is recorded, so opening it never meets a 404.
  const runId = await sent.getByRole('link').innerText();
  await waitFor(async () => (await n.api('GET', `/v1/flux/apps/e2e-flow/runs/${runId}`, undefined, { raw: true })).ok, 20_000, 'the message run');
  await sent.getByRole('link').click();
  await page.getByTestId('run-trace').waitFor();
  await page.getByRole('link', { name: '← all runs' }).click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="runs-table"] tbody tr').length === 4);

  assert.deepEqual(page.errors, []);
  await page.close();
});
