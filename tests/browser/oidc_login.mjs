// SPDX-License-Identifier: BSD-3-Clause
// Chromium signs in to hubd through a real OpenID Connect provider
// (oidc-provider's own login and consent pages), then starts a server,
// which hubd spawns as the mapped local Unix account, and lands on the
// notebook tree. Run by tests/integration/test_oidc_login.py.
//
// env: HUB_URL, IDP_LOGIN (the provider account), USER (the local account it
// maps to), SERVICE (login_service), ARTIFACTS, CHROMIUM.
import { Harness, env } from './harness.mjs';

const HUB_URL = env('HUB_URL').replace(/\/+$/, '');
const IDP_LOGIN = env('IDP_LOGIN');
const USER = env('USER');
const SERVICE = env('SERVICE');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const USER_PREFIX = `/user/${encodeURIComponent(USER)}/`;
const h = new Harness({ artifacts: env('ARTIFACTS'), overallMs: 200000 });

await h.run(async () => {
  const browser = await h.launch(CHROMIUM);
  const page = await browser.newPage();
  h.current = page;
  h.watch(page, 'browser');
  const hubOrigin = new URL(HUB_URL).origin;

  h.step = '1 the hub offers the provider';
  await page.goto(`${HUB_URL}/hub/login`);
  const button = page.locator('#oauth_login');
  const label = (await button.textContent()) || '';
  if (!label.includes(`Sign in with ${SERVICE}`)) h.fail(`the sign-in button says "${label}"`);
  if (await page.locator('input[type=password]').count()) h.fail('the login page still has a password field');
  await h.shot(page, 'oidc-01-login.png');
  h.ok(`login page offers "${label.trim()}"`);

  h.step = '2 the provider\'s login and consent pages';
  await Promise.all([page.waitForURL((u) => u.origin !== hubOrigin, { timeout: 30000 }), button.click()]);
  await page.waitForSelector('input[name=login]', { timeout: 30000 });
  await page.fill('input[name=login]', IDP_LOGIN);
  await page.fill('input[name=password]', 'any password: development interactions');
  await h.shot(page, 'oidc-02-provider-login.png');
  await page.click('button[type=submit]');
  // Consent, unless the provider goes straight back.
  await page.waitForURL((u) => u.origin === hubOrigin || u.pathname.startsWith('/interaction/'), { timeout: 30000 });
  if (new URL(page.url()).origin !== hubOrigin) {
    await page.waitForSelector('button[type=submit]', { timeout: 30000 });
    await h.shot(page, 'oidc-03-consent.png');
    await Promise.all([page.waitForURL((u) => u.origin === hubOrigin, { timeout: 30000 }),
      page.click('button[type=submit]')]);
  }
  await page.waitForURL((u) => u.origin === hubOrigin && !u.pathname.startsWith('/hub/oauth_callback'),
    { timeout: 30000 });
  const home = (await page.textContent('body')) || '';
  if (!home.includes(USER)) h.fail(`after the provider, ${page.url()} does not name ${USER}: ${home.slice(0, 300)}`);
  await h.shot(page, 'oidc-04-home.png');
  h.ok(`signed in to the hub as ${USER} (${page.url()})`);

  h.step = '3 start the server';
  await page.goto(`${HUB_URL}/hub/home`);
  await page.waitForSelector('#start');
  await Promise.all([
    page.waitForURL((u) => u.pathname.startsWith('/hub/spawn-pending/') || u.pathname.startsWith(USER_PREFIX),
      { timeout: 30000 }),
    page.click('#start'),
  ]);
  await page.waitForURL((u) => u.pathname === `${USER_PREFIX}tree` || u.pathname === `${USER_PREFIX}tree/`,
    { timeout: 120000 });
  await page.waitForSelector('#notebook_list', { state: 'visible', timeout: 60000 });
  await h.shot(page, 'oidc-05-tree.png');
  h.ok(`the notebook tree of ${USER} at ${page.url()}`);
});
