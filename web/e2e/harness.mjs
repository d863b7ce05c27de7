// End-to-end harness for the console: starts the real nagare binary on a
// loopback port with a fresh data directory, talks to its API, and drives
// Debian's Chromium through playwright-core. Screenshots go to
// <repo>/test-output/e2e/ (kept by CI as artifacts).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '../..');
export const shared = path.resolve(repo, '../shared');
export const outDir = path.join(repo, 'test-output', 'e2e');
export const rootEmail = 'root@nagare.local';
export const rootPassword = 'e2e-password-1';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * startNagare starts `bin/nagare serve` (NAGARE_BIN overrides; command:
 * 'demo' runs `nagare demo` instead) and waits
 * until /readyz answers. It returns {base, data, api, stop, log()}.
 * extraArgs are added to the command line; env to the environment.
 */
export async function startNagare({ extraArgs = [], env = {}, data, port, db, mqttPort, command = 'serve' } = {}) {
  const bin = process.env.NAGARE_BIN || path.join(repo, 'bin', 'nagare');
  if (!fs.existsSync(bin)) throw new Error(`${bin} not found: run make build first`);
  const ownData = !data; // a directory the caller gave is the caller's to remove
  data = data || fs.mkdtempSync(path.join(os.tmpdir(), 'nagare-e2e-'));
  seedModels(data);
  // A restart passes the same data, port and db, so pages can reconnect.
  port = port || (await freePort());
  // Never the default :1883: tests run side by side.
  mqttPort = mqttPort || (await freePort());
  const base = `http://127.0.0.1:${port}`;
  const args = [command, `--listen=127.0.0.1:${port}`, `--data=${data}`, `--root-password=${rootPassword}`, `--log-level=info`, `--mqtt-listen=127.0.0.1:${mqttPort}`, ...extraArgs];
  if (!db && process.env.NAGARE_TEST_POSTGRES && !extraArgs.some((a) => a.startsWith('--db'))) {
    // One PostgreSQL database per server, so runs do not see each other.
    db = await freshPostgres(process.env.NAGARE_TEST_POSTGRES);
  }
  if (db) args.push(`--db=${db}`);
  let output = '';
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((r) => child.once('exit', r));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nagare exited (${child.exitCode}):\n${output}`);
    try {
      const r = await fetch(base + '/readyz');
      if (r.ok) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nagare not ready within 60 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const session = await (await fetch(base + '/v1/auth', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email: rootEmail, password: rootPassword }),
  })).json();

  /** api calls the API as root; JSON bodies are encoded, errors thrown. */
  async function api(method, p, body, { contentType, raw } = {}) {
    const headers = { 'X-Soracom-API-Key': session.apiKey, 'X-Soracom-Token': session.token };
    let b = body;
    if (body !== undefined && !(typeof body === 'string' || body instanceof Uint8Array || Buffer.isBuffer(body))) {
      b = JSON.stringify(body);
      headers['Content-Type'] = 'application/json';
    } else if (contentType) headers['Content-Type'] = contentType;
    const r = await fetch(base + p, { method, headers, body: b });
    if (raw) return r;
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text}`);
    try {
      return text ? JSON.parse(text) : undefined;
    } catch {
      return text;
    }
  }

  async function stop({ keep = false } = {}) {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(t);
    }
    if (!keep && ownData) fs.rmSync(data, { recursive: true, force: true });
  }
  return { base, data, port, db, mqttPort, api, session, stop, log: () => output, child };
}

// The offline vision models are 145 MB from npm; the Go tests cache them in
// os.tmpdir()/nagare-models-test (internal/vision/tfjs/tfjstest), and a
// server given them in DATA/models does not fetch again.
function seedModels(data) {
  const cache = path.join(os.tmpdir(), 'nagare-models-test', '3.0.4', 'models');
  if (!fs.existsSync(cache)) return;
  const dst = path.join(data, 'models', '3.0.4');
  fs.mkdirSync(dst, { recursive: true });
  for (const f of fs.readdirSync(cache)) {
    const to = path.join(dst, f);
    if (!fs.existsSync(to)) fs.copyFileSync(path.join(cache, f), to);
  }
}

async function freshPostgres(dsn) {
  const { execFileSync } = await import('node:child_process');
  const name = `e2e_${process.pid}_${Date.now()}`;
  execFileSync('psql', [dsn, '-qc', `CREATE DATABASE ${name}`]);
  const u = new URL(dsn);
  u.pathname = '/' + name;
  return u.toString();
}

/** launch starts headless Chromium (CHROMIUM overrides /usr/bin/chromium). */
export async function launch() {
  // Playwright gives Chromium a fresh temporary profile; the flags keep it
  // from reaching out to Google's hosts (this network is closed).
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return browser;
}

/** newPage opens a page with a desktop viewport; console errors are collected in page.errors. */
export async function newPage(browser) {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: 'en-US', timezoneId: 'Asia/Tokyo' });
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && page.errors.push(m.text()));
  return page;
}

/** login opens the console and logs in as root with email/password. */
export async function login(page, base) {
  await page.goto(base + '/');
  await page.getByLabel('Email (root account)').fill(rootEmail);
  await page.getByLabel('Password').fill(rootPassword);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('nav.side').waitFor();
}

/** shot saves a full-page screenshot as test-output/e2e/<name>.png. */
export async function shot(page, name) {
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, name + '.png');
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** waitFor polls f until it returns a truthy value (or throws after ms). */
export async function waitFor(f, ms = 30_000, what = 'condition') {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ': ' + last : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
