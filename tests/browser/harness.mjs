// SPDX-License-Identifier: BSD-3-Clause
// What every browser script here needs: Debian's chromium launched the way
// the brief says (headless, --no-sandbox, background networking off), a log
// with elapsed times, screenshots into ARTIFACTS, the browser's own errors
// recorded per page, and on failure a report with the failing page's
// screenshot, URL, text and those events. A watchdog ends a hung run.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

export const env = (name, dflt) => {
  const v = process.env[name] ?? dflt;
  if (v === undefined || v === '') {
    console.error(`e2e: missing environment variable ${name}`);
    process.exit(2);
  }
  return v;
};

export class Harness {
  constructor({ artifacts, overallMs }) {
    this.artifacts = artifacts;
    this.t0 = Date.now();
    this.events = [];
    this.current = null; // the page a failure screenshot should show
    this.step = 'start-up';
    this.browser = null;
    fs.mkdirSync(artifacts, { recursive: true });
    this.watchdog = setTimeout(async () => {
      await this.failReport(new Error(`overall time limit of ${overallMs / 1000} s exceeded`));
      try { await this.browser?.close(); } catch {}
      process.exit(1);
    }, overallMs);
  }

  elapsed() { return `${((Date.now() - this.t0) / 1000).toFixed(1)}s`; }
  log(msg) { console.log(`e2e [${this.elapsed()}] ${msg}`); }
  ok(msg) { this.log(`ok ${msg}`); }
  fail(msg) { throw new Error(msg); }

  record(who, msg) {
    this.events.push(`[${this.elapsed()}] ${who}: ${msg}`);
    if (this.events.length > 400) this.events.shift();
  }

  // Console errors, page errors, failed requests, HTTP >= 400 and WebSockets of `page`.
  watch(page, who) {
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning')
        this.record(who, `console.${m.type()}: ${m.text()} (${m.location()?.url || 'no url'})`);
    });
    page.on('pageerror', (e) => this.record(who, `page error: ${e.message}`));
    page.on('requestfailed', (r) => this.record(who, `request failed: ${r.method()} ${r.url()} (${r.failure()?.errorText})`));
    page.on('response', (r) => {
      if (r.status() >= 400) this.record(who, `HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
    });
    page.on('websocket', (ws) => {
      let sent = 0;
      let received = 0;
      this.record(who, `websocket open ${ws.url()}`);
      ws.on('framesent', () => sent++);
      ws.on('framereceived', () => received++);
      ws.on('socketerror', (e) => this.record(who, `websocket error ${ws.url()}: ${e}`));
      ws.on('close', () => this.record(who, `websocket closed ${ws.url()} (${sent} frames sent, ${received} received)`));
    });
  }

  async shot(page, name) {
    await page.screenshot({ path: path.join(this.artifacts, name), fullPage: true });
    this.log(`screenshot ${name}`);
  }

  async launch(executablePath) {
    this.browser = await chromium.launch({
      executablePath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync',
        '--disable-features=Translate,OptimizationHints,MediaRouter'],
    });
    return this.browser;
  }

  async failReport(err) {
    console.log(`e2e: FAIL in step "${this.step}": ${err && err.stack ? err.stack : err}`);
    if (this.current) {
      try {
        console.log(`e2e: page URL at failure: ${this.current.url()}`);
        await this.current.screenshot({ path: path.join(this.artifacts, 'failure.png'), fullPage: true, timeout: 10000 });
        console.log(`e2e: failure screenshot ${path.join(this.artifacts, 'failure.png')}`);
        const text = await this.current.evaluate(() => document.body ? document.body.innerText : '').catch(() => '');
        console.log(`e2e: page text at failure:\n${String(text).slice(0, 2000)}`);
      } catch (e) {
        console.log(`e2e: could not capture the failing page: ${e.message}`);
      }
    }
    console.log(`e2e: browser events (console errors, HTTP >= 400, failed requests, WebSockets):`);
    for (const e of this.events) console.log(`  ${e}`);
  }

  // Runs `body`, then exits 0 with "e2e: PASS", or 1 after the failure report.
  async run(body) {
    try {
      await body();
      const bad = this.events.filter((e) => e.includes('page error') || e.includes('websocket error'));
      if (bad.length) this.log(`note: ${bad.length} page/WebSocket error(s) seen:\n  ${bad.join('\n  ')}`);
      this.log(`browser events:\n  ${this.events.join('\n  ') || '(none)'}`);
      await this.browser?.close();
      clearTimeout(this.watchdog);
      console.log('e2e: PASS');
      process.exit(0);
    } catch (err) {
      clearTimeout(this.watchdog);
      await this.failReport(err);
      try { await this.browser?.close(); } catch {}
      process.exit(1);
    }
  }
}
