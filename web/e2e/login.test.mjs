// Logging in: email/password and auth key; a wrong password is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNagare, launch, newPage, login, shot, rootEmail } from './harness.mjs';

let n, browser;
before(async () => {
  n = await startNagare();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await n?.stop();
});

test('wrong password is refused with the API message', async () => {
  const page = await newPage(browser);
  await page.goto(n.base + '/');
  await page.getByLabel('Email (root account)').fill(rootEmail);
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').innerText(), /AUT0003/);
  await page.close();
});

test('log in with email/password, then log out', async () => {
  const page = await newPage(browser);
  await login(page, n.base);
  await shot(page, 'login-home');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('button', { name: 'Log in' }).waitFor();
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('log in with an auth key', async () => {
  const key = await n.api('POST', `/v1/operators/${n.session.operatorId}/auth_keys`);
  const page = await newPage(browser);
  await page.goto(n.base + '/');
  await page.getByRole('button', { name: 'Auth key' }).click();
  await page.getByLabel('Auth key ID').fill(key.authKeyId);
  await page.getByLabel('Auth key', { exact: true }).fill(key.authKey);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('nav.side').waitFor();
  await page.close();
});
