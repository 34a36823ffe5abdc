// SPDX-License-Identifier: BSD-3-Clause
// Issue 4's acceptance test in a real browser: Debian's /usr/bin/chromium,
// driven by playwright-core, goes through hubd the way a person would.
//
//   1. USER logs in on the hub's login page and lands on /hub/home
//   2. "Start my server"; the pending page reloads itself until the notebook
//      tree under /user/USER/tree loads (hubd's proxy + OAuth)
//   3. New -> Python 3 notebook (a popup tab); the first cell runs
//      `import os; x = os.getpid(); print(os.getuid(), os.getcwd())` and must
//      print "EXPECT_UID EXPECT_HOME": the kernel's WebSocket works through
//      the proxy
//   3b. (with HANDSHAKE_DIR) the test driver kills hubd with SIGKILL and
//      starts it again (handshake "hub-restart", below); the open notebook
//      reconnects to the kernel by itself, and a second cell
//      `print(os.getpid(), x)` prints "P P": the same kernel, still holding
//      the first cell's x. Then handshake "server-check" lets the driver
//      check that the server process is still the one it had before
//   4. DENIED_USER (another browser context) opening /user/USER/tree ends on
//      a hub 403 page, not the notebook
//   5. back on /hub/home (it must say "running"), "Stop my server"; the page
//      says "not running"
//
// Environment: HUB_URL, USER, PASSWORD, EXPECT_UID, EXPECT_HOME, ARTIFACTS
// (screenshots go there), optional DENIED_USER/DENIED_PASSWORD (step 4),
// optional HANDSHAKE_DIR (step 3b), CHROMIUM (default /usr/bin/chromium),
// E2E_TIMEOUT_MS (default 240000).
//
// Handshake with the test driver (step 3b): this script prints a line
// "e2e: WAIT <name>" and polls for the file HANDSHAKE_DIR/<name>; the driver
// does its part and writes that file (atomically) with "ok <note>" to go on
// or "fail <reason>" to fail the step. No answer within 120 s fails too.
// Prints "e2e: ok <step>" per step and "e2e: PASS" at the end; exit 0 on
// success, 1 on any failure (with failure.png, the page URL, console errors,
// failed requests and WebSocket events printed).
import fs from 'node:fs';
import path from 'node:path';

import { Harness, env } from './harness.mjs';

const HUB_URL = env('HUB_URL').replace(/\/+$/, '');
const USER = env('USER');
const PASSWORD = env('PASSWORD');
const EXPECT_UID = env('EXPECT_UID');
const EXPECT_HOME = env('EXPECT_HOME');
const ARTIFACTS = env('ARTIFACTS');
const DENIED_USER = process.env.DENIED_USER || '';
const DENIED_PASSWORD = process.env.DENIED_PASSWORD || '';
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const OVERALL_MS = Number(env('E2E_TIMEOUT_MS', '240000'));
const HANDSHAKE_DIR = process.env.HANDSHAKE_DIR || '';
const HANDSHAKE_MS = 120000;

const USER_PREFIX = `/user/${encodeURIComponent(USER)}/`;
const h = new Harness({ artifacts: ARTIFACTS, overallMs: OVERALL_MS });
const log = (msg) => h.log(msg);
const ok = (msg) => h.ok(msg);
const fail = (msg) => h.fail(msg);
const shot = (page, name) => h.shot(page, name);
const events = h.events;

const login = async (page, user, password) => {
  const resp = await page.goto(HUB_URL + '/');
  if (!resp) fail(`no response for ${HUB_URL}/`);
  await page.waitForSelector('input[name="username"]', { timeout: 30000 });
  if (!new URL(page.url()).pathname.startsWith('/hub/login'))
    fail(`${HUB_URL}/ did not lead to the login page but to ${page.url()}`);
  await page.fill('input[name="username"]', user);
  await page.fill('input[name="password"]', password);
  return resp;
};

// After login the browser lands on the home page: /hub/home, or /hub/ (the
// login's ?next= when the visit began at HUB_URL), which hubd answers with the
// same home page.
const HOME_PATHS = ['/hub/home', '/hub/'];
const submitLogin = async (page) => {
  await Promise.all([
    page.waitForURL((u) => !u.pathname.startsWith('/hub/login'), { timeout: 30000 }),
    page.click('#login_submit'),
  ]);
  const where = new URL(page.url()).pathname;
  if (!HOME_PATHS.includes(where)) fail(`login led to ${page.url()}, not the home page`);
  const h1 = ((await page.textContent('h1')) || '').trim();
  if (h1 !== 'Your server') fail(`the page after login (${page.url()}) is not the home page: <h1>${h1}</h1>`);
};

// Hands control to the test driver (see the header) and returns its note.
const handshake = async (name) => {
  const file = path.join(HANDSHAKE_DIR, name);
  console.log(`e2e: WAIT ${name}`);
  const deadline = Date.now() + HANDSHAKE_MS;
  while (!fs.existsSync(file)) {
    if (Date.now() > deadline)
      fail(`the test driver did not answer handshake "${name}" within ${HANDSHAKE_MS / 1000} s (no ${file})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const answer = fs.readFileSync(file, 'utf8').trim();
  if (!answer.startsWith('ok')) fail(`the test driver failed handshake "${name}": ${answer}`);
  return answer.replace(/^ok\s*/, '');
};

// Runs code in the notebook's code cell number index (0-based) by typing it,
// as a person would, and returns the cell's output text once it has finished.
const runCell = async (nb, index, code) => {
  const cells = nb.locator('#notebook-container .cell.code_cell');
  if ((await cells.count()) <= index)
    fail(`the notebook has ${await cells.count()} code cell(s), no cell ${index + 1} to type into`);
  const cell = cells.nth(index);
  await cell.locator('.CodeMirror').click();
  await nb.keyboard.type(code);
  const typed = await nb.evaluate((i) => Jupyter.notebook.get_cell(i).get_text(), index);
  if (typed !== code) fail(`cell ${index + 1} holds ${JSON.stringify(typed)}, not ${JSON.stringify(code)}`);
  await nb.keyboard.press('Shift+Enter');
  const out = cell.locator('.output_subarea');
  await out.first().waitFor({ state: 'visible', timeout: 60000 });
  // Wait for the execution to finish (the prompt gets its number).
  await cell.locator('.input_prompt').filter({ hasText: /\[\d+\]/ }).waitFor({ timeout: 60000 });
  return ((await out.allInnerTexts()).join('\n')).trim();
};

const kernelIdle = () => window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel &&
  Jupyter.notebook.kernel.is_connected() && Jupyter.notebook.kernel_busy === false &&
  document.querySelector('#kernel_indicator_icon.kernel_idle_icon') !== null;

const serverStatus = async (page) =>
  ((await page.locator('#server-status').textContent({ timeout: 10000 })) || '').trim();

await h.run(async () => {
  h.step = 'launch chromium';
  const browser = await h.launch(CHROMIUM);
  log(`chromium ${browser.version()}, hub ${HUB_URL}, user ${USER}`);
  const alice = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  alice.setDefaultTimeout(30000);
  alice.setDefaultNavigationTimeout(60000);
  const page = await alice.newPage();
  h.current = page;
  h.watch(page, USER);

  // 1. login page -> home
  h.step = '1 login';
  await login(page, USER, PASSWORD);
  await shot(page, '01-login.png');
  await submitLogin(page);
  const home = (await page.textContent('body')) || '';
  if (!home.includes(USER)) fail(`/hub/home does not name ${USER}`);
  const status0 = await serverStatus(page);
  if (!status0.includes('not running')) fail(`server status before start: "${status0}"`);
  await page.waitForSelector('#start');
  await shot(page, '02-home.png');
  ok(`logged in as ${USER}, on ${page.url()} ("${status0}")`);

  // 2. start -> pending page (reloads itself) -> notebook tree
  h.step = '2 start server';
  await Promise.all([
    page.waitForURL((u) => u.pathname.startsWith('/hub/spawn-pending/') || u.pathname.startsWith(USER_PREFIX),
      { timeout: 30000 }),
    page.click('#start'),
  ]);
  if (new URL(page.url()).pathname.startsWith('/hub/spawn-pending/')) {
    await page.waitForSelector('h1');
    await shot(page, '03-pending.png');
    ok(`pending page ${page.url()}: "${(await page.textContent('h1')).trim()}"`);
  } else {
    fail(`the start button went straight to ${page.url()}, not the pending page`);
  }
  h.step = '2 wait for the notebook tree';
  await page.waitForURL((u) => u.pathname === `${USER_PREFIX}tree` || u.pathname === `${USER_PREFIX}tree/`,
    { timeout: 120000 });
  await page.waitForSelector('#new-dropdown-button', { state: 'visible', timeout: 60000 });
  await page.waitForSelector('#notebook_list', { state: 'visible' });
  // The kernel list fills the New menu asynchronously.
  await page.waitForSelector('#new-menu li[id^="kernel-"]', { state: 'attached', timeout: 30000 });
  await shot(page, '04-tree.png');
  ok(`notebook tree at ${page.url()} (title "${await page.title()}")`);

  // 3. New -> Python 3 notebook, in a popup
  h.step = '3 new notebook';
  await page.click('#new-dropdown-button');
  const item = page.locator('#new-menu li#kernel-python3 > a');
  await item.waitFor({ state: 'visible' });
  const itemText = ((await item.textContent()) || '').trim();
  const [nb] = await Promise.all([alice.waitForEvent('page', { timeout: 30000 }), item.click()]);
  h.current = nb;
  h.watch(nb, `${USER} notebook`);
  await nb.waitForURL((u) => u.pathname.startsWith(`${USER_PREFIX}notebooks/`) && u.pathname.endsWith('.ipynb'),
    { timeout: 60000 });
  ok(`"${itemText}" opened ${nb.url()}`);
  h.step = '3 kernel connects';
  await nb.waitForFunction(kernelIdle, null, { timeout: 90000, polling: 250 });
  const kernelName = await nb.evaluate(() => Jupyter.notebook.kernel.name);
  ok(`kernel ${kernelName} connected and idle`);

  h.step = '3 run the first cell';
  // x is for step 3b: only the same kernel process still knows it.
  const output = await runCell(nb, 0, 'import os; x = os.getpid(); print(os.getuid(), os.getcwd())');
  const expected = `${EXPECT_UID} ${EXPECT_HOME}`;
  await shot(nb, '05-notebook-output.png');
  if (output !== expected) fail(`cell output is ${JSON.stringify(output)}, expected ${JSON.stringify(expected)}`);
  ok(`cell output "${output}" (uid and home of ${USER}): the kernel WebSocket works through the proxy`);
  const sockets = events.filter((e) => e.includes('websocket open') && e.includes('/channels'));
  log(`kernel WebSockets seen: ${sockets.length ? sockets.join('; ') : 'none'}`);
  if (!sockets.length) fail('no kernel channels WebSocket was opened');

  // 3b. the hub crashes and comes back; the notebook keeps its kernel
  if (HANDSHAKE_DIR) {
    h.step = '3b hub restart';
    // The notebook's own kernel events, to see it lose and regain the kernel.
    await nb.evaluate(() => {
      window.e2eKernelEvents = [];
      Jupyter.notebook.events.on(
        'kernel_disconnected.Kernel kernel_reconnecting.Kernel kernel_connected.Kernel ' +
          'kernel_connection_failed.Kernel kernel_dead.Kernel',
        (e) => window.e2eKernelEvents.push(e.type));
    });
    const socketsBefore = events.filter((e) => e.includes('websocket open') && e.includes('/channels')).length;
    ok(`hub restart: ${await handshake('hub-restart')}`);

    h.step = '3b kernel reconnects after the hub restart';
    // Connected again after a disconnect (not merely "still connected" because
    // the drop has not been noticed yet), or dead, which ends the wait early.
    const state = await nb.waitForFunction(() => {
      const ev = window.e2eKernelEvents;
      if (ev.includes('kernel_dead')) return 'dead';
      const lost = ev.lastIndexOf('kernel_disconnected');
      return lost >= 0 && ev.indexOf('kernel_connected', lost) > lost;
    }, null, { timeout: 90000, polling: 250 });
    const kernelEvents = await nb.evaluate(() => window.e2eKernelEvents.join(' '));
    if ((await state.jsonValue()) === 'dead') fail(`the notebook declared the kernel dead: ${kernelEvents}`);
    await nb.waitForFunction(kernelIdle, null, { timeout: 60000, polling: 250 });
    const socketsAfter = events.filter((e) => e.includes('websocket open') && e.includes('/channels')).length;
    if (socketsAfter <= socketsBefore) fail('no new kernel channels WebSocket after the hub restart');
    await shot(nb, '08-kernel-reconnected.png');
    ok(`kernel reconnected after the hub restart (notebook kernel events: ${kernelEvents})`);

    h.step = '3b run the second cell';
    const output2 = await runCell(nb, 1, 'print(os.getpid(), x)');
    await shot(nb, '09-second-cell-output.png');
    const same = /^(\d+) (\d+)$/.exec(output2);
    if (!same || same[1] !== same[2])
      fail(`the second cell printed ${JSON.stringify(output2)}, not "PID PID": not the first cell's kernel`);
    ok(`second cell output "${output2}": the same kernel (pid ${same[1]}) after the hub restart`);

    h.step = '3b server check';
    ok(`server check: ${await handshake('server-check')}`);
  }

  // 4. another user may not reach this server (while it runs)
  if (DENIED_USER) {
    h.step = '4 other user is denied';
    const bobCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    bobCtx.setDefaultTimeout(30000);
    const bob = await bobCtx.newPage();
    h.current = bob;
    h.watch(bob, DENIED_USER);
    await login(bob, DENIED_USER, DENIED_PASSWORD);
    await submitLogin(bob);
    ok(`${DENIED_USER} logged in (${bob.url()})`);
    const resp = await bob.goto(`${HUB_URL}${USER_PREFIX}tree`);
    const finalPath = new URL(bob.url()).pathname;
    const body = (await bob.textContent('body')) || '';
    await shot(bob, '07-bob-denied.png');
    if (!resp) fail(`no response for ${USER_PREFIX}tree`);
    const chain = [];
    for (let r = resp.request(); r; r = r.redirectedFrom()) chain.unshift(new URL(r.url()).pathname);
    log(`${DENIED_USER}'s way: ${chain.join(' -> ')} (status ${resp.status()})`);
    if (resp.status() !== 403) fail(`${DENIED_USER} got status ${resp.status()} at ${bob.url()}, not 403`);
    if (!finalPath.startsWith('/hub/')) fail(`${DENIED_USER} ended on ${bob.url()}, not a hub page`);
    if (body.includes('Select or create a notebook') || (await bob.$('#notebook_list')))
      fail(`${DENIED_USER} sees ${USER}'s notebook tree`);
    ok(`${DENIED_USER} gets a hub 403 page at ${bob.url()}`);
    await bobCtx.close();
    h.current = nb;
  }

  // 5. stop the server from the home page
  h.step = '5 stop server';
  await nb.close();
  h.current = page;
  await page.goto(`${HUB_URL}/hub/home`);
  const status1 = await serverStatus(page);
  await shot(page, '10-home-running.png');
  if (!status1.includes('running') || status1.includes('not running'))
    fail(`home page before stopping says "${status1}"`);
  ok(`home page before stopping says "${status1}"`);
  // POST /hub/stop answers once the server has stopped (10 s at most) with a
  // redirect back to /hub/home: wait for that new document.
  const reloaded = page.waitForEvent('load', { timeout: 30000 });
  await page.click('#stop');
  await reloaded;
  if (new URL(page.url()).pathname !== '/hub/home') fail(`"Stop my server" led to ${page.url()}, not /hub/home`);
  const deadline = Date.now() + 60000;
  let status2 = await serverStatus(page);
  while (!status2.includes('not running')) {
    if (Date.now() > deadline) fail(`home page still says "${status2}" 60 s after stopping`);
    await page.waitForTimeout(1000);
    await page.reload();
    status2 = await serverStatus(page);
  }
  await page.waitForSelector('#start');
  await shot(page, '06-stopped.png');
  ok(`home page says "${status2}"`);
});
