// The operations page in a real browser (issue 17): sign in with the admin
// token, see a route's counters move under load, a job fail and then succeed
// after "Retry now", a cron task run by "Run now"; the page at 390 px wide.
// Started by admin.sh (ADMIN_URL, ADMIN_TOKEN, ADMIN_ARTIFACTS).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { chromium } from 'playwright-core';

const BASE = process.env.ADMIN_URL;
const TOKEN = process.env.ADMIN_TOKEN;
const ARTIFACTS = process.env.ADMIN_ARTIFACTS || path.join(import.meta.dirname, 'artifacts');
const WAIT = 15000;

let browser;

before(async () => {
  assert.ok(BASE && TOKEN, 'ADMIN_URL and ADMIN_TOKEN must be set (see admin.sh)');
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (browser) await browser.close();
});

async function post(route, body) {
  const r = await fetch(`${BASE}/${route}`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  return { status: r.status, json: await r.json() };
}

const shot = (page, name) => page.screenshot({ path: path.join(ARTIFACTS, `admin-${name}.png`), fullPage: true });

test('operations page: load, retry now, run now, phone width', { timeout: 180000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) errors.push(m.text()); });

  // Without the token: the sign-in form (the page itself answers 401).
  const resp = await page.goto(BASE + '/_donkey');
  assert.equal(resp.status(), 401);
  await page.locator('#login').waitFor({ state: 'visible' });
  await page.fill('#token', 'wrong');
  await page.click('#login button');
  await page.locator('#login-error', { hasText: 'refused' }).waitFor();
  await page.fill('#token', TOKEN);
  await page.click('#login button');
  await page.locator('#app').waitFor({ state: 'visible' });
  assert.equal(await page.textContent('#role'), 'admin');
  await page.locator('#live.on').waitFor(); // the live stream is open

  // A route's counters move under load (live updates, no reload).
  for (let i = 0; i < 300; i += 30)
    await Promise.all(Array.from({ length: 30 }, (_, k) => post('conf.echo', { name: `n${i + k}` })));
  const echo = page.locator('#routes tr[data-route="conf.echo"] [data-testid="requests"]');
  await page.waitForFunction(() => {
    const c = document.querySelector('#routes tr[data-route="conf.echo"] [data-testid="requests"]');
    return c && Number(c.textContent.replace(/,/g, '')) >= 300;
  });
  const before = Number((await echo.textContent()).replace(/,/g, ''));
  await Promise.all(Array.from({ length: 50 }, (_, k) => post('conf.echo', { name: `m${k}` })));
  await page.waitForFunction((b) => {
    const c = document.querySelector('#routes tr[data-route="conf.echo"] [data-testid="requests"]');
    return c && Number(c.textContent.replace(/,/g, '')) >= b + 50;
  }, before);
  await shot(page, 'routes-under-load');

  // A job fails, then succeeds after "Retry now".
  const { json: { id } } = await post('conf.job', { name: 'failOnce', data: { key: 'browser' }, maxAttempts: 1 });
  const failure = page.locator(`#failures tr[data-job="${id}"]`);
  await failure.waitFor();
  assert.match(await failure.textContent(), /first run of 'browser' fails/);
  await page.locator(`#jobs tr[data-job="${id}"] [data-testid="job-status"]`, { hasText: 'failed' }).waitFor();
  await shot(page, 'job-failed');
  await failure.locator('button', { hasText: 'Retry now' }).click();
  await page.locator(`#jobs tr[data-job="${id}"] [data-testid="job-status"]`, { hasText: 'completed' }).waitFor();
  await failure.waitFor({ state: 'detached' });
  await page.click(`#jobs a[data-show="${id}"]`);
  const detail = page.locator('[data-testid="job-detail"]');
  await detail.filter({ hasText: '"browser"' }).waitFor();
  assert.match(await detail.textContent(), /failed \(attempt 1\): failOnce: first run[\s\S]*completed/);
  await shot(page, 'job-retried');

  // A cron task run by "Run now".
  const row = page.locator('#cron tr[data-task="conf-report"]');
  assert.match(await row.textContent(), /every Monday at 03:00/);
  assert.equal((await row.locator('[data-testid="cron-runs"]').textContent()).trim(), '0');
  await row.locator('button', { hasText: 'Run now' }).click();
  await page.waitForFunction(() => {
    const c = document.querySelector('#cron tr[data-task="conf-report"] [data-testid="cron-runs"]');
    return c && c.textContent.trim().startsWith('1');
  });
  await row.locator('.ok', { hasText: 'ok' }).waitFor();
  await shot(page, 'cron-run-now');

  // 390 px wide: nothing scrolls sideways, everything still there.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `page is ${width}px wide at 390px`);
  await row.locator('button', { hasText: 'Run now' }).waitFor({ state: 'visible' });
  await shot(page, 'phone');
  assert.deepEqual(errors, []);
  await context.close();
});
