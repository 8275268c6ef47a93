// Two people on one board: both sign up in separate browser contexts, open
// the same board, and each sees the other's changes live (SSE), without a
// reload. Also runs an export and downloads the file. Started by run.sh,
// which sets BOARD_URL (the running board) and BOARD_ARTIFACTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import http from 'node:http';
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

// Content-Security-Policy violations the page reports (securityHeaders is on).
const cspViolations = [];

async function signUp(username, password = PASSWORD, viewport = { width: 1200, height: 760 },
  extra = {}) {
  const context = await browser.newContext({ viewport, ...extra });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on('pageerror', (e) => console.error(`[${username}] page error:`, e.message));
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  await page.goto(BASE + '/app');
  await page.locator('#auth-view').waitFor({ state: 'visible' });
  await page.click('#auth-switch');
  await page.fill('#username', username);
  await page.fill('#password', password);
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

// ---- a phone (issue 16, item 18) ----

// True when the page is wider than the window (sideways scrolling).
const scrollsSideways = (page) => page.evaluate(
  () => document.documentElement.scrollWidth > document.documentElement.clientWidth + 1);

test('the board works on a 390 px wide phone', { timeout: 120000 }, async () => {
  const name = 'phone' + Date.now().toString(36);
  const phone = { width: 390, height: 844 };
  const { context, page } = await signUp(name, PASSWORD, phone,
    { isMobile: true, hasTouch: true, deviceScaleFactor: 2 });

  // "/" leads to the page; the page has an icon.
  const root = await page.request.get(BASE + '/', { maxRedirects: 0 });
  assert.equal(root.status(), 302);
  assert.equal(root.headers()['location'], '/app');
  const icon = await page.request.get(BASE + await page.getAttribute('link[rel=icon]', 'href'));
  assert.equal(icon.status(), 200);
  assert.match(icon.headers()['content-type'], /^image\/svg\+xml/);
  assert.equal((await page.request.get(BASE + '/favicon.ico', { maxRedirects: 0 })).status(), 302);

  const boardName = 'Groceries ' + name;
  await page.fill('#new-board-name', boardName);
  await page.click('#new-board button[type=submit]');
  await page.locator('#board-name', { hasText: boardName }).waitFor();
  await page.locator('#live.on').waitFor();
  // A new board: the activity list says it is empty rather than nothing.
  await page.locator('#activity li.empty').waitFor();
  assert.equal(await scrollsSideways(page), false, 'the board scrolls sideways at 390 px');

  // Inputs are usable: inside the window, finger-sized, text not shrunk.
  for (const sel of ['#new-task-title', '#new-task button[type=submit]', '#new-board-name']) {
    const box = await page.locator(sel).boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= phone.width, sel + ' leaves the window');
    assert.ok(box.height >= 36, sel + ' is ' + box.height + ' px high');
  }
  const fontSize = await page.$eval('#new-task-title', (e) => getComputedStyle(e).fontSize);
  assert.equal(fontSize, '16px');

  // A title of spaces is refused by the page (and the server, test_board.py).
  await page.fill('#new-task-title', '    ');
  await page.click('#new-task button[type=submit]');
  assert.equal(await page.$eval('#new-task-title', (e) => e.validity.valid), false);
  assert.equal(await page.locator('li.task').count(), 0);

  // A long word wraps instead of widening the page.
  const long = 'Supercalifragilistic'.repeat(8);
  await page.fill('#new-task-title', long);
  await page.click('#new-task button[type=submit]');
  await task(page, 'todo', long).waitFor();
  await page.locator('#activity li', { hasText: name + ' added' }).waitFor();
  assert.equal(await page.locator('#activity li.empty').count(), 0);
  await page.fill('#new-task-title', 'Milk');
  await page.click('#new-task button[type=submit]');
  await task(page, 'todo', 'Milk').waitFor();
  await task(page, 'todo', 'Milk').locator('[data-action=move-right]').tap();
  await task(page, 'doing', 'Milk').waitFor();
  await task(page, 'doing', 'Milk').locator('[data-action=delete]').tap();
  // "deleted" says which task.
  await page.locator('#activity li', { hasText: name + ' deleted \u201cMilk\u201d' }).waitFor();
  assert.equal(await scrollsSideways(page), false, 'a long word widens the page');
  const activityBox = await page.locator('#activity').boundingBox();
  assert.ok(activityBox.x + activityBox.width <= phone.width, 'the activity list overflows');

  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const shot = path.join(ARTIFACTS, 'board-phone.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log('screenshot: ' + shot);

  // The activity survives a reload: it comes from the server.
  const before = await page.locator('#activity li').allTextContents();
  await page.reload();
  await page.locator('#board-name', { hasText: boardName }).waitFor();
  await page.locator('#activity li', { hasText: 'deleted \u201cMilk\u201d' }).waitFor();
  const after = await page.locator('#activity li').allTextContents();
  assert.deepEqual(after.map((t) => t.replace(/^.* — /, '')),
    before.map((t) => t.replace(/^.* — /, '')));
  assert.deepEqual(after.map((t) => t.replace(/^.* — /, '')).slice(0, 4), [
    name + ' deleted \u201cMilk\u201d', name + ' moved \u201cMilk\u201d to doing',
    name + ' added \u201cMilk\u201d', name + ' added \u201c' + long + '\u201d']);

  // Log out, then the form is the log-in form again, even after a sign-up.
  await page.click('#logout');
  await page.locator('#auth-view').waitFor({ state: 'visible' });
  assert.equal(await page.textContent('#auth-title'), 'Log in');
  assert.equal(await page.textContent('#auth-submit'), 'Log in');
  assert.equal(await page.inputValue('#password'), '');
  assert.equal(await scrollsSideways(page), false, 'the log-in form scrolls sideways');
  await page.fill('#username', name);
  await page.fill('#password', PASSWORD);
  await page.click('#auth-submit');
  await page.locator('#whoami').waitFor({ state: 'visible' });
  await context.close();
});

// ---- cross-site request forgery (issue 14, item 4) ----

// An attacker's page on another port of this host: serves `html` at /.
async function attackerSite(html) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(html);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: server.address().port };
}

// A form that posts `json` as text/plain: the field name carries the JSON up to
// its last string, the "=" and value close it, as a real CSRF page would.
function autoSubmitForm(action, json) {
  const text = JSON.stringify(json);
  const cut = text.lastIndexOf('"');
  const name = text.slice(0, cut).replace(/&/g, '&amp;').replace(/'/g, '&#39;');
  const value = text.slice(cut).replace(/&/g, '&amp;').replace(/'/g, '&#39;');
  return `<!doctype html><form method="POST" action="${action}" enctype="text/plain">` +
    `<input type="hidden" name='${name}' value='${value}'></form>` +
    '<script>document.forms[0].submit()</script>';
}

const callAs = (page, route, body) => page.evaluate(async ([r, b]) => {
  const res = await fetch('/' + r, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(b),
  });
  return { status: res.status, body: await res.json() };
}, [route, body]);

test('a page on another port cannot add a task as the signed-in victim', { timeout: 60000 },
  async () => {
    const victim = await signUp('victim' + Date.now().toString(36));
    const created = await callAs(victim.page, 'boards.create', { name: 'Private' });
    assert.equal(created.status, 200);
    const boardId = created.body.id;
    // The form ends the title with "=" (text/plain joins name and value with it).
    const site = await attackerSite(autoSubmitForm(BASE + '/tasks.add',
      { boardId, title: 'pwned' }));
    try {
      const attack = await victim.context.newPage();
      const answered = attack.waitForResponse((r) => r.url().endsWith('/tasks.add'), { timeout: WAIT });
      await attack.goto(`http://127.0.0.1:${site.port}/`);
      const res = await answered;
      assert.notEqual(res.status(), 200, 'the forged request was served');
      await attack.close();
      const got = await callAs(victim.page, 'boards.get', { id: boardId });
      assert.equal(got.status, 200);
      assert.deepEqual(got.body.tasks, [], 'a forged task was created');
    } finally {
      site.server.close();
      await victim.context.close();
    }
  });

test('a cross-site page cannot log the visitor in as the attacker', { timeout: 60000 }, async () => {
  // The attacker's own account, whose session the forged log-in would plant;
  // its password ends with the "=" the text/plain form adds.
  const name = 'attacker' + Date.now().toString(36);
  const attacker = await signUp(name, PASSWORD + '=');
  await attacker.context.close();
  const site = await attackerSite(autoSubmitForm(BASE + '/auth.login',
    { username: name, password: PASSWORD }));
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    const answered = page.waitForResponse((r) => r.url().endsWith('/auth.login'), { timeout: WAIT });
    // "localhost" is another site than the board's 127.0.0.1.
    await page.goto(`http://localhost:${site.port}/`);
    const res = await answered;
    assert.notEqual(res.status(), 200, 'the forged log-in was served');
    const cookies = await context.cookies();
    assert.equal(cookies.filter((c) => c.name === 'board_session').length, 0,
      'a session cookie was planted');
    await page.goto(BASE + '/app');
    await page.locator('#auth-view').waitFor({ state: 'visible' });
  } finally {
    site.server.close();
    await context.close();
  }
});

test('the page runs under its Content-Security-Policy without violations', () => {
  assert.deepEqual(cspViolations, []);
});
