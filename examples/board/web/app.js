// The board's page: the generated TypeScript client (its JavaScript) for the
// typed routes and the live event stream; the session travels in the
// HTTP-only cookie. No framework.
import { createApiClient, ApiError } from '/client.js';

const $ = (sel) => document.querySelector(sel);
const COLUMNS = ['todo', 'doing', 'done'];

const state = {
  user: null,
  boards: new Map(),   // id -> board
  board: null,         // the open board
  tasks: new Map(),    // id -> task of the open board
  stream: null,        // SseConnection of the live stream
  exports: new Map(),  // jobId -> last export event seen before our answer
  myJob: null,
};

// ---- API ----------------------------------------------------------------

// The client generated from the board's routes (`donkey generate client`),
// served by the board itself as /client.js and /runtime.js.
const api = createApiClient({ baseUrl: location.origin, credentials: 'same-origin' });

// Runs one typed call; a 401 (session gone) shows the log-in form.
async function call(fn, input = {}) {
  try {
    return await fn(input);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401 && fn !== api.auth.login) showAuth();
    throw e;
  }
}

// ---- Live events ---------------------------------------------------------

const LIVE_EVENTS = ['board.created', 'task.added', 'task.moved', 'task.deleted',
  'export.progress', 'export.done', 'reset'];

// Opens the board's event stream (the lobby when boardId is null). The
// runtime reconnects with Last-Event-ID, so events sent meanwhile are replayed.
function openStream(boardId) {
  const conn = api.sse.connect({
    route: 'boards.live',
    query: boardId ? { board: String(boardId) } : {},
    onConnect: () => setLive(true),
    onDisconnect: () => setLive(false),
    onError: (e) => { if (e instanceof ApiError && e.status === 401) showAuth(); },
  });
  for (const name of LIVE_EVENTS) conn.on(name, (data) => onLiveEvent(name, data));
  return conn;
}

function setLive(on) {
  const el = $('#live');
  el.textContent = on ? 'live' : 'offline';
  el.className = 'live ' + (on ? 'on' : 'off');
}

// ---- Views --------------------------------------------------------------

let signingUp = false;

function showAuth() {
  state.user = null;
  if (state.stream) state.stream.disconnect();
  state.stream = null;
  setLive(false);
  $('#app-view').hidden = true;
  $('#auth-view').hidden = false;
  $('#whoami').hidden = true;
  $('#logout').hidden = true;
}

function setAuthMode(up) {
  signingUp = up;
  $('#auth-title').textContent = up ? 'Sign up' : 'Log in';
  $('#auth-submit').textContent = up ? 'Sign up' : 'Log in';
  $('#auth-switch-text').textContent = up ? 'Have an account?' : 'No account yet?';
  $('#auth-switch').textContent = up ? 'Log in' : 'Sign up';
  $('#password').autocomplete = up ? 'new-password' : 'current-password';
  $('#auth-error').textContent = '';
}

async function showApp(user) {
  state.user = user;
  $('#auth-view').hidden = true;
  $('#app-view').hidden = false;
  $('#whoami').hidden = false;
  $('#whoami').textContent = 'Signed in as ' + user.username;
  $('#logout').hidden = false;
  await loadBoards();
  const m = location.hash.match(/^#board=(\d+)$/);
  if (m && state.boards.has(Number(m[1]))) await openBoard(Number(m[1]));
  else listen(null);
}

async function loadBoards() {
  const boards = [];
  let after = 0;
  do { // one page at a time (boards.list is paginated)
    const page = await call(api.boards.list, { after });
    boards.push(...page.boards);
    after = page.nextCursor;
  } while (after != null);
  state.boards.clear();
  for (const b of boards) state.boards.set(b.id, b);
  renderBoards();
}

function renderBoards() {
  const ul = $('#board-list');
  ul.replaceChildren();
  for (const b of state.boards.values()) {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = '#board=' + b.id;
    a.textContent = b.name;
    a.dataset.boardId = b.id;
    if (state.board && state.board.id === b.id) a.className = 'active';
    li.append(a);
    ul.append(li);
  }
}

function listen(boardId) {
  if (state.stream) state.stream.disconnect();
  state.stream = openStream(boardId);
}

async function openBoard(id) {
  const { board, tasks } = await call(api.boards.get, { id });
  state.board = board;
  state.tasks.clear();
  for (const t of tasks) state.tasks.set(t.id, t);
  $('#no-board').hidden = true;
  $('#board').hidden = false;
  $('#board-name').textContent = board.name;
  $('#board-owner').textContent = 'by ' + board.owner;
  renderActivity([]);
  $('#export-progress').hidden = true;
  $('#export-link').hidden = true;
  renderBoards();
  renderTasks();
  listen(id);
  // The activity list comes from the server, so it survives a reload.
  const { items } = await call(api.boards.activity, { id });
  if (state.board && state.board.id === id) renderActivity(items);
}

function renderTasks(flashId) {
  for (const c of COLUMNS) $('#col-' + c).replaceChildren();
  for (const t of state.tasks.values()) {
    const li = document.createElement('li');
    li.className = 'task' + (t.id === flashId ? ' flash' : '');
    li.dataset.taskId = t.id;
    li.dataset.column = t.column;
    li.draggable = true;
    li.addEventListener('dragstart', (e) => e.dataTransfer.setData('text/plain', String(t.id)));
    const title = document.createElement('div');
    title.className = 'title';
    title.textContent = t.title;
    const meta = document.createElement('div');
    meta.className = 'meta';
    meta.textContent = 'added by ' + t.createdBy;
    const actions = document.createElement('div');
    actions.className = 'actions';
    const i = COLUMNS.indexOf(t.column);
    if (i > 0) actions.append(button('◀', 'move-left', () => move(t.id, COLUMNS[i - 1])));
    if (i < COLUMNS.length - 1) actions.append(button('▶', 'move-right', () => move(t.id, COLUMNS[i + 1])));
    actions.append(button('✕', 'delete', () => call(api.tasks.delete, { id: t.id }).catch(report)));
    li.append(title, meta, actions);
    $('#col-' + t.column).append(li);
  }
}

function button(text, action, fn) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  b.dataset.action = action;
  b.title = action.replace('-', ' ');
  b.addEventListener('click', fn);
  return b;
}

async function move(id, column) {
  try {
    const t = await call(api.tasks.move, { id, column });
    upsert(t);
  } catch (e) { report(e); }
}

function upsert(task, flash) {
  if (!state.board || task.boardId !== state.board.id) return;
  state.tasks.set(task.id, task);
  renderTasks(flash ? task.id : undefined);
}

function activityItem(at, text) {
  const li = document.createElement('li');
  li.textContent = new Date(at).toLocaleTimeString() + ' — ' + text;
  return li;
}

// items: newest first, as boards.activity answers them.
function renderActivity(items) {
  const ol = $('#activity');
  ol.replaceChildren(...items.map((i) => activityItem(i.at, i.text)));
  if (items.length === 0) {
    const li = document.createElement('li');
    li.className = 'empty';
    li.textContent = 'No activity yet: add a task to get started.';
    ol.append(li);
  }
}

function activity(text, at = Date.now()) {
  const ol = $('#activity');
  for (const e of ol.querySelectorAll('li.empty')) e.remove();
  ol.prepend(activityItem(at, text));
}

// A live event's line: the server's wording ({at, text}) when it sent one.
function activityOf(d, fallback) {
  if (d.activity && typeof d.activity.text === 'string') activity(d.activity.text, d.activity.at);
  else activity(fallback);
}

function report(e) {
  activity('Error: ' + e.message);
}

// ---- Live events --------------------------------------------------------

function onLiveEvent(name, d) {
  if (d === null || typeof d !== 'object') d = {};
  const who = d.by ? d.by.username : 'someone';
  switch (name) {
    case 'board.created':
      state.boards.set(d.board.id, d.board);
      renderBoards();
      break;
    case 'task.added':
      upsert(d.task, true);
      activityOf(d, who + ' added “' + d.task.title + '”');
      break;
    case 'task.moved':
      upsert(d.task, true);
      activityOf(d, who + ' moved “' + d.task.title + '” to ' + d.task.column);
      break;
    case 'task.deleted':
      if (state.tasks.delete(d.id)) renderTasks();
      activityOf(d, who + ' deleted “' + (d.title || 'a task') + '”');
      break;
    case 'export.progress':
    case 'export.done':
      onExport(name, d);
      break;
    case 'reset': // missed too much while disconnected: reload
      if (state.board) openBoard(state.board.id);
      break;
  }
}

function onExport(name, d) {
  if (state.myJob === null) { state.exports.set(d.jobId, { name, d }); return; }
  if (d.jobId !== state.myJob) return;
  const bar = $('#export-progress');
  if (name === 'export.progress') {
    bar.hidden = false;
    bar.value = d.percent;
  } else {
    bar.value = 100;
    const a = $('#export-link');
    a.href = d.url;
    a.hidden = false;
    activity('Export ready: ' + d.file);
  }
}

// ---- Wiring -------------------------------------------------------------

$('#auth-switch').addEventListener('click', (e) => { e.preventDefault(); setAuthMode(!signingUp); });

$('#auth-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = { username: $('#username').value.trim(), password: $('#password').value };
  try {
    const { user } = await call(signingUp ? api.auth.signup : api.auth.login, input);
    $('#password').value = '';
    await showApp(user);
  } catch (err) {
    $('#auth-error').textContent = err.status === 429
      ? 'Too many attempts, please wait a minute.' : err.message;
  }
});

$('#logout').addEventListener('click', async () => {
  try { await call(api.auth.logout); } catch { /* already logged out */ }
  state.board = null;
  $('#username').value = '';
  $('#password').value = '';
  setAuthMode(false); // back to "Log in", whichever form was used before
  showAuth();
});

// A name or title made only of spaces is refused here (and by the server).
function notBlank(input, what) {
  const v = input.value.trim();
  input.setCustomValidity(v === '' ? what + ' must not be blank' : '');
  if (v === '') input.reportValidity();
  return v;
}
for (const sel of ['#new-board-name', '#new-task-title']) {
  $(sel).addEventListener('input', (e) => e.target.setCustomValidity(''));
}

$('#new-board').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const name = notBlank($('#new-board-name'), 'A board name');
    if (name === '') return;
    const b = await call(api.boards.create, { name });
    $('#new-board-name').value = '';
    state.boards.set(b.id, b);
    location.hash = '#board=' + b.id;
  } catch (err) { report(err); }
});

$('#new-task').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const title = notBlank($('#new-task-title'), 'A title');
    if (title === '') return;
    const t = await call(api.tasks.add, { boardId: state.board.id, title });
    $('#new-task-title').value = '';
    upsert(t);
  } catch (err) { report(err); }
});

$('#export').addEventListener('click', async () => {
  state.myJob = null;
  state.exports.clear();
  $('#export-link').hidden = true;
  $('#export-progress').hidden = false;
  $('#export-progress').value = 0;
  try {
    const { jobId } = await call(api.boards.export, { id: state.board.id });
    state.myJob = jobId;
    const seen = state.exports.get(jobId);
    if (seen) onExport(seen.name, seen.d);
  } catch (err) { report(err); }
});

for (const col of document.querySelectorAll('.column')) {
  col.addEventListener('dragover', (e) => { e.preventDefault(); col.classList.add('drop'); });
  col.addEventListener('dragleave', () => col.classList.remove('drop'));
  col.addEventListener('drop', (e) => {
    e.preventDefault();
    col.classList.remove('drop');
    const id = Number(e.dataTransfer.getData('text/plain'));
    const t = state.tasks.get(id);
    if (t && t.column !== col.dataset.column) move(id, col.dataset.column);
  });
}

window.addEventListener('hashchange', () => {
  const m = location.hash.match(/^#board=(\d+)$/);
  if (m && state.user) openBoard(Number(m[1])).catch(report);
});

(async () => {
  setAuthMode(false);
  try {
    const { user } = await call(api.auth.me);
    await showApp(user);
  } catch {
    showAuth();
  }
})();
