// Development helper: a screenshot of one page in Debian's headless Chromium.
//   node tests/ui/shot.mjs URL OUT.png [WIDTH HEIGHT] [--light] [--wait MS] [--full]
import { chromium } from 'playwright-core';
const a = process.argv.slice(2);
const flag = (n) => a.includes(n);
const opt = (n, d) => (a.indexOf(n) >= 0 ? a[a.indexOf(n) + 1] : d);
const [url, out, w = '1366', h = '900'] = a.filter((x, i) => !x.startsWith('--') && !(i > 0 && a[i - 1] === '--wait'));
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'] });
const page = await browser.newPage({ viewport: { width: +w, height: +h }, colorScheme: flag('--light') ? 'light' : 'dark' });
page.on('console', (m) => { if (m.type() === 'error') console.log('console error:', m.text()); });
page.on('pageerror', (e) => console.log('page error:', e.message));
await page.goto(url, { waitUntil: 'load' });
await page.waitForTimeout(+opt('--wait', 2500));
await page.screenshot({ path: out, fullPage: flag('--full') });
await browser.close();
