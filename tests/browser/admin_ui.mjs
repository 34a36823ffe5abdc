// SPDX-License-Identifier: BSD-3-Clause
// Issue 6's pages in a real browser: the token page and the admin panel,
// clicked through by an admin in Debian's chromium (playwright-core), with a
// screenshot of every state kept in ARTIFACTS.
//
//   1. USER (an admin) logs in
//   2. /hub/token: requests a token with a note holding markup, an expiry
//      and one scope; the token is shown once; it works against the REST API
//      with exactly that scope; the note is shown as text; on the next
//      visit the value is gone; Revoke makes the API refuse it
//   3. /hub/admin: the users table; the name filter; start OTHER_USER's
//      server (real sudo, real jupyterhub-singleuser) and wait for it to be
//      running; read its log; stop it; make OTHER_USER an admin and back;
//      add two users that cannot be added (no Unix account, a bad name) and
//      get a reason for each
//   4. shut the hub down from the panel (confirmation, then the done page);
//      the test driver checks that hubd exited
//
// Environment: HUB_URL, USER, PASSWORD, OTHER_USER, ARTIFACTS, optional
// CHROMIUM (default /usr/bin/chromium), E2E_TIMEOUT_MS (default 240000).
// Prints "e2e: ok <what>" per check and "e2e: PASS" at the end; exit 0 on
// success, 1 on failure (failure.png and the browser's events printed).
import { Harness, env } from './harness.mjs';

const HUB_URL = env('HUB_URL').replace(/\/+$/, '');
const USER = env('USER');
const PASSWORD = env('PASSWORD');
const OTHER = env('OTHER_USER');
const h = new Harness({ artifacts: env('ARTIFACTS'), overallMs: Number(env('E2E_TIMEOUT_MS', '240000')) });

const api = async (token, path) => {
  const r = await fetch(`${HUB_URL}/hub/api${path}`, { headers: { Authorization: `token ${token}` } });
  let body = null;
  try { body = await r.json(); } catch {}
  return { status: r.status, body };
};

// Clicks something that submits a form and waits for the page it leads to.
const submit = async (page, selector) => {
  await Promise.all([page.waitForNavigation({ timeout: 30000 }), page.click(selector)]);
};

const row = (page, name) => page.locator(`#admin-users tbody tr[data-user="${name}"]`);

// Reloads the admin page until OTHER's row says `state` (data-server).
const waitServer = async (page, state, seconds) => {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const now = await row(page, OTHER).getAttribute('data-server');
    if (now === state) return;
    if (Date.now() > deadline) h.fail(`${OTHER}'s server is "${now}" after ${seconds} s, not "${state}"`);
    await page.waitForTimeout(1000);
    await page.reload();
  }
};

const flash = async (page) => (await page.locator('#admin-flash').innerText().catch(() => '')).trim();

await h.run(async () => {
  h.step = 'launch chromium';
  const browser = await h.launch(env('CHROMIUM', '/usr/bin/chromium'));
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(30000);
  const page = await context.newPage();
  h.current = page;
  h.watch(page, USER);

  h.step = '1 login';
  await page.goto(`${HUB_URL}/hub/login`);
  await page.fill('input[name="username"]', USER);
  await page.fill('input[name="password"]', PASSWORD);
  await submit(page, '#login_submit');
  if (new URL(page.url()).pathname.startsWith('/hub/login')) h.fail(`login as ${USER} failed: ${page.url()}`);
  h.ok(`logged in as ${USER}`);

  // 2. token page
  h.step = '2 token page';
  await page.goto(`${HUB_URL}/hub/token`);
  await page.waitForSelector('#token-form');
  await h.shot(page, '11-token-page.png');
  const note = 'browser <b>test</b> "note"';
  const scope = 'read:users:activity!user';
  await page.fill('#token-note', note);
  const oneDay = await page.locator('#token-expires option[data-expiry="1d"]').getAttribute('value');
  await page.selectOption('#token-expires', oneDay);
  await page.fill('#token-scopes', scope);
  await submit(page, '#token-request');
  const value = ((await page.locator('#token-value').innerText()) || '').trim();
  const id = await page.locator('#token-value').getAttribute('data-token-id');
  if (!/^[0-9a-f]{32,}$/.test(value)) h.fail(`the new token is not shown (got ${JSON.stringify(value)})`);
  await h.shot(page, '12-token-created.png');
  h.ok(`token ${id} created and shown once`);

  const me = await api(value, '/user');
  if (me.status !== 200 || me.body?.name !== USER) h.fail(`GET /hub/api/user with the new token: ${me.status}`);
  const scopes = me.body.scopes || [];
  if (!scopes.includes(`read:users:activity!user=${USER}`) || scopes.some((s) => s.startsWith('admin')))
    h.fail(`the token holds ${JSON.stringify(scopes)}, not just ${scope}`);
  const list = await api(value, '/users');
  if (list.status !== 403) h.fail(`the token lists users (${list.status}): it has more than ${scope}`);
  h.ok(`the token works with exactly ${scope} (${JSON.stringify(scopes)})`);

  const noteCell = page.locator(`#api-tokens tr[data-token-id="${id}"] td.note`);
  const shownNote = ((await noteCell.innerText()) || '').trim();
  if (shownNote !== note) h.fail(`the note is shown as ${JSON.stringify(shownNote)}, not as text ${JSON.stringify(note)}`);
  if (await page.locator('#api-tokens td.note b').count()) h.fail('the note\'s markup became HTML');
  const expires = ((await page.locator(`#api-tokens tr[data-token-id="${id}"] td.expires`).innerText()) || '').trim();
  if (!expires || /never/i.test(expires)) h.fail(`the token's expiry is shown as ${JSON.stringify(expires)}`);
  h.ok(`the note is shown as text, expiry "${expires}"`);

  await page.goto(`${HUB_URL}/hub/token`);
  if (await page.locator('#token-value').count()) h.fail('the token value is shown again on the next visit');
  if ((await page.content()).includes(value)) h.fail('the token value is in the page on the next visit');
  await submit(page, `#api-tokens button.revoke[data-token-id="${id}"]`);
  await page.waitForSelector('#token-status[data-status="revoked"]');
  if (await page.locator(`#api-tokens tr[data-token-id="${id}"]`).count()) h.fail('the revoked token is still listed');
  await h.shot(page, '13-token-revoked.png');
  const after = await api(value, '/user');
  if (after.status !== 403) h.fail(`the revoked token still answers ${after.status}`);
  h.ok('token revoked: the API refuses it');

  // 3. admin panel
  h.step = '3 admin panel';
  await page.goto(`${HUB_URL}/hub/admin`);
  await page.waitForSelector('#admin-users');
  for (const name of [USER, OTHER])
    if (!(await row(page, name).count())) h.fail(`the admin panel lists no row for ${name}`);
  if ((await row(page, USER).getAttribute('data-admin')) !== 'true') h.fail(`${USER} is not shown as an admin`);
  await h.shot(page, '14-admin.png');
  h.ok('admin panel lists the users');

  await page.fill('#name_filter', OTHER.slice(-3));
  await Promise.all([page.waitForNavigation(), page.press('#name_filter', 'Enter')]);
  const names = await page.locator('#admin-users tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.user));
  if (names.length !== 1 || names[0] !== OTHER) h.fail(`filter "${OTHER.slice(-3)}" shows ${JSON.stringify(names)}`);
  await h.shot(page, '15-admin-filter.png');
  h.ok(`the name filter shows only ${OTHER}`);

  h.step = '3 start another user\'s server';
  await submit(page, `#admin-users button[value="start"][data-user="${OTHER}"]`);
  await waitServer(page, 'running', 120);
  await h.shot(page, '16-admin-other-running.png');
  h.ok(`${OTHER}'s server started from the panel`);

  h.step = '3 server log';
  await submit(page, `#admin-users a[data-action="log"][data-user="${OTHER}"]`);
  const logText = (await page.locator('body').innerText()) || '';
  if (!/jupyter/i.test(logText)) h.fail(`${OTHER}'s server log page shows no server output: ${logText.slice(0, 300)}`);
  await h.shot(page, '17-other-server-log.png');
  h.ok(`${OTHER}'s server log is readable`);
  await page.goBack();
  await page.reload();

  h.step = '3 stop another user\'s server';
  await submit(page, `#admin-users button[value="stop"][data-user="${OTHER}"]`);
  await waitServer(page, 'stopped', 60);
  await h.shot(page, '18-admin-other-stopped.png');
  h.ok(`${OTHER}'s server stopped from the panel`);

  h.step = '3 toggle admin';
  await submit(page, `#admin-users button[value="set_admin"][data-user="${OTHER}"]`);
  if ((await row(page, OTHER).getAttribute('data-admin')) !== 'true') h.fail(`${OTHER} did not become an admin`);
  await h.shot(page, '19-admin-other-is-admin.png');
  await submit(page, `#admin-users button[value="set_admin"][data-user="${OTHER}"]`);
  if ((await row(page, OTHER).getAttribute('data-admin')) !== 'false') h.fail(`${OTHER} is still an admin`);
  h.ok(`${OTHER} made an admin and back`);

  h.step = '3 add users';
  await page.goto(`${HUB_URL}/hub/admin`);
  await page.fill('#add-names', 'hubtnosuchuser\nbad/name');
  await submit(page, '#admin-add button[value="add_users"]');
  const errors = await page.locator('#admin-flash li[data-flash="error"]').allInnerTexts();
  const all = errors.join('\n');
  if (!all.includes('hubtnosuchuser') || !/adduser/.test(all) || !all.includes('bad/name'))
    h.fail(`adding impossible users gives no reason for each: ${JSON.stringify(errors)}`);
  if (await row(page, 'hubtnosuchuser').count()) h.fail('a user without a Unix account was added');
  await h.shot(page, '20-admin-add-errors.png');
  h.ok(`adding impossible users is refused with a reason for each (${await flash(page)})`);

  // 4. shut down
  h.step = '4 shut down';
  await submit(page, '#shutdown-start');
  await page.waitForSelector('#admin-confirm-shutdown');
  await h.shot(page, '21-admin-confirm-shutdown.png');
  await submit(page, '#confirm-shutdown');
  await page.waitForSelector('#admin-shutdown-done');
  await h.shot(page, '22-hub-shutting-down.png');
  h.ok('the hub says it is shutting down');
});
