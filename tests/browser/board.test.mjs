// Two people on one board: both sign up in separate browser contexts, open
// the same board, and each sees the other's changes live (SSE), without a
// reload. Also runs an export and downloads the file. Started by run.sh,
// which sets BOARD_URL (the running board) and BOARD_ARTIFACTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { chromium } from 'playwright-core';

const BASE = process.env.BOARD_URL;
const ARTIFACTS = process.env.BOARD_ARTIFACTS || path.join(import.meta.dirname, 'artifacts');
const WAIT = 10000; // every wait is bounded
const PASSWORD = 'correct horse battery';

let browser;

before(async () => {
  assert.ok(BASE, 'BOARD_URL must point at a running board (see run.sh)');
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (browser) await browser.close();
});

async function signUp(username) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 760 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on('pageerror', (e) => console.error(`[${username}] page error:`, e.message));
  await page.goto(BASE + '/app');
  await page.locator('#auth-view').waitFor({ state: 'visible' });
  await page.click('#auth-switch');
  await page.fill('#username', username);
  await page.fill('#password', PASSWORD);
  await page.click('#auth-submit');
  await page.locator('#whoami').waitFor({ state: 'visible' });
  assert.match(await page.textContent('#whoami'), new RegExp(username));
  return { context, page };
}

const task = (page, column, title) =>
  page.locator(`#col-${column} li.task`, { has: page.locator('.title', { hasText: title }) });

test('two users see each other\'s changes live', { timeout: 120000 }, async () => {
  const suffix = Date.now().toString(36);
  const ann = await signUp('ann' + suffix);
  const bob = await signUp('bob' + suffix);

  // Ann creates the board; it opens for her.
  const boardName = 'Team ' + suffix;
  await ann.page.fill('#new-board-name', boardName);
  await ann.page.click('#new-board button[type=submit]');
  await ann.page.locator('#board-name', { hasText: boardName }).waitFor();
  await ann.page.locator('#live.on').waitFor();

  // Bob sees it in his list (live: he is on the lobby stream) and opens it.
  const link = bob.page.locator('#board-list a', { hasText: boardName });
  await link.waitFor();
  await link.click();
  await bob.page.locator('#board-name', { hasText: boardName }).waitFor();
  await bob.page.locator('#live.on').waitFor();

  // Ann adds a task: Bob sees it appear in "To do".
  const title = 'Ship the board ' + suffix;
  await ann.page.fill('#new-task-title', title);
  await ann.page.click('#new-task button[type=submit]');
  await task(ann.page, 'todo', title).waitFor();
  await task(bob.page, 'todo', title).waitFor({ timeout: WAIT });

  // Ann moves it to "Doing": Bob sees it move.
  await task(ann.page, 'todo', title).locator('[data-action=move-right]').click();
  await task(bob.page, 'doing', title).waitFor({ timeout: WAIT });
  assert.equal(await task(bob.page, 'todo', title).count(), 0);

  // Bob moves it to "Done": Ann sees it.
  await task(bob.page, 'doing', title).locator('[data-action=move-right]').click();
  await task(ann.page, 'done', title).waitFor({ timeout: WAIT });

  // Bob adds a second one; Ann sees who did it in the activity list.
  await bob.page.fill('#new-task-title', 'Write the docs');
  await bob.page.click('#new-task button[type=submit]');
  await task(ann.page, 'todo', 'Write the docs').waitFor({ timeout: WAIT });
  await ann.page.locator('#activity li', { hasText: 'bob' + suffix + ' added' }).waitFor();

  // Ann exports the board: progress over SSE, then a download link.
  await ann.page.click('#export');
  const dl = ann.page.locator('#export-link');
  await dl.waitFor({ state: 'visible', timeout: 20000 });
  const href = await dl.getAttribute('href');
  const res = await ann.page.request.get(BASE + href);
  assert.equal(res.status(), 200);
  const doc = await res.json();
  assert.equal(doc.board.name, boardName);
  assert.deepEqual(doc.tasks.map((t) => t.column).sort(), ['done', 'todo']);

  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const shot = path.join(ARTIFACTS, 'board.png');
  await bob.page.screenshot({ path: shot, fullPage: true });
  await ann.page.screenshot({ path: path.join(ARTIFACTS, 'board-ann.png'), fullPage: true });
  console.log('screenshot: ' + shot);

  await ann.context.close();
  await bob.context.close();
});
