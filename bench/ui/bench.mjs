// Times the run page and the integrations page of the web UI (bench.py starts the stack): each
// round is a new browser context (empty cache, so every file is fetched), signed in through
// sessionStorage before the first script runs. Per page: Chromium's navigation timing
// (responseEnd, domContentLoadedEventEnd, loadEventEnd, from navigation start), "rendered"
// (performance.now() once the page's data is on screen: the run's graph, the providers table)
// and the bytes transferred (transferSize of the document and every resource).
import { createRequire } from 'node:module';
import { join } from 'node:path';

const { GW_URL, RUN_ID, USER, PEERS } = process.env;
const ROUNDS = Number(process.env.ROUNDS || 20);
const require = createRequire(join(PEERS, 'package.json'));
const { chromium } = require('playwright-core');

const pages = {
  run: { path: '/runs/' + RUN_ID, ready: 'g.node[data-status="success"]' },
  integrations: { path: '/integrations', ready: 'tbody tr' },
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
try {
  console.log(`| page | responseEnd ms | DOMContentLoaded ms | load ms | rendered ms (p50 / p95) | transferred bytes | requests |`);
  console.log(`|---|---|---|---|---|---|---|`);
  for (const [name, pg] of Object.entries(pages)) {
    const m = { resp: [], dcl: [], load: [], shown: [], bytes: [], n: [] };
    for (let i = 0; i < ROUNDS; i++) {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      await ctx.addInitScript((u) => {
        sessionStorage.setItem('toolgate.session', JSON.stringify({ mode: 'user', user: u }));
      }, USER);
      const page = await ctx.newPage();
      await page.goto(GW_URL + pg.path);
      await page.waitForSelector(pg.ready);
      const t = await page.evaluate(() => {
        const shown = performance.now();
        const nav = performance.getEntriesByType('navigation')[0];
        const res = performance.getEntriesByType('resource');
        return { shown, resp: nav.responseEnd, dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
                 bytes: nav.transferSize + res.reduce((a, r) => a + r.transferSize, 0), n: 1 + res.length };
      });
      for (const k of Object.keys(m)) m[k].push(t[k]);
      await ctx.close();
    }
    const f = (xs) => pct(xs, 50).toFixed(1);
    console.log(`| ${name} | ${f(m.resp)} | ${f(m.dcl)} | ${f(m.load)} | ${f(m.shown)} / ${pct(m.shown, 95).toFixed(1)} | ${pct(m.bytes, 50)} | ${pct(m.n, 50)} |`);
  }
  console.log(`(${ROUNDS} rounds per page, cold cache each, loopback)`);
} finally {
  await browser.close(); // playwright's launch used a fresh temporary profile
}
