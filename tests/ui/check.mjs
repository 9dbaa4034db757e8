// Headless browser check of the web UI, run by tests/ui.rs against the server in demo mode:
//   node tests/ui/check.mjs http://127.0.0.1:PORT/ [--prefix /pw/] [--default-gateway ID] [--out DIR]
// Drives Debian's /usr/bin/chromium (CHROMIUM=… to override) through playwright-core, which never
// downloads a browser. Exits 0 when every check passes; prints one line per check.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const argv = process.argv.slice(2);
const arg = (n) => { const i = argv.indexOf(n); return i >= 0 ? argv[i + 1] : undefined; };
const BASE = (argv.find((a) => /^https?:\/\//.test(a)) || 'http://127.0.0.1:8675/').replace(/\/?$/, '/');
const PREFIX = arg('--prefix');
const here = path.dirname(fileURLToPath(import.meta.url));
const OUT = path.resolve(arg('--out') || path.join(here, '../../target/ui-artifacts'));
const EXE = process.env.CHROMIUM || '/usr/bin/chromium';
const CONTROL = arg('--control');          // a gateway the control card can write to
const CONTROL_TOKEN = arg('--control-token');
const ORIGIN = new URL(BASE).origin;
const started = Date.now();

let passed = 0, failed = 0;
const ok = (name) => { passed++; console.log(`ok   ${name}`); };
const bad = (name, why) => { failed++; console.log(`FAIL ${name}: ${why}`); };
async function check(name, fn) {
  try { const r = await fn(); if (r === false) bad(name, 'condition false'); else ok(name + (typeof r === 'string' ? ` (${r})` : '')); }
  catch (e) { bad(name, (e && e.message ? e.message : String(e)).split('\n')[0]); }
}
const kwh = (v) => v.toFixed(1) + ' kWh'; // the History page's and dashboard's rounding
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function api(p) {
  const r = await fetch(new URL(p, BASE), { cache: 'no-store' });
  if (!r.ok || !(r.headers.get('content-type') || '').includes('json')) return undefined;
  return r.json();
}
async function until(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e.message; }
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last: ${JSON.stringify(last)})` : ''}`);
}

fs.mkdirSync(OUT, { recursive: true });
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-ui-'));
const ctx = await chromium.launchPersistentContext(userDataDir, {
  executablePath: EXE,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-quic', '--disable-dev-shm-usage'],
  viewport: { width: 1366, height: 900 },
  colorScheme: 'dark',
});

// Everything the pages do is watched: console errors, page errors, failed and non-local requests.
const problems = [];
let expect401 = false;
let navigating = false;
function watch(page, label) {
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (expect401 && m.text().includes('401 (Unauthorized)')) return; // the wrong-token check
    problems.push(`${label} console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${label} page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    const why = r.failure() ? r.failure().errorText : '?';
    if (navigating && why === 'net::ERR_ABORTED') return; // cancelled by our own reload
    problems.push(`${label} request failed: ${r.url()} ${why}`);
  });
  page.on('response', (r) => {
    if (r.status() === 401 && expect401 && r.url().includes('/control/')) return; // the wrong-token check
    if (r.status() >= 400) problems.push(`${label} HTTP ${r.status()}: ${r.url()}`);
  });
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(ORIGIN + '/') && !u.startsWith(ORIGIN.replace(/^http/, 'ws') + '/') && !u.startsWith('data:') && !u.startsWith('about:')) problems.push(`${label} external request: ${u}`);
  });
}
async function nav(page, fn) { navigating = true; try { await fn(); } finally { navigating = false; } }

const page = ctx.pages()[0] || await ctx.newPage();
watch(page, 'dashboard');
// WebSockets pass through untouched until a check cuts them (to see the REST fallback).
const wsCtl = { block: false, open: new Set() };
await page.routeWebSocket(/\/ws\//, (ws) => {
  if (wsCtl.block) { ws.close({ code: 1011, reason: 'cut by the test' }); return; }
  ws.connectToServer();
  wsCtl.open.add(ws);
});

const gateways = await api('api/gateways');
const v2 = Array.isArray(gateways);
console.log(`UI check of ${BASE} (${v2 ? `multi-gateway API, ${gateways.length} gateway(s)` : 'legacy routes only'})`);

const readTiles = () => page.evaluate(() => {
  const w = (id) => { const e = document.getElementById(id); return e && e.dataset.w !== '' ? { w: +e.dataset.w, text: e.textContent } : null; };
  const soe = document.getElementById('soe');
  return { solar: w('m-solar'), load: w('m-load'), battery: w('m-battery'), site: w('m-site'), soe: soe && soe.dataset.v ? +soe.dataset.v : null, soeText: soe && soe.textContent };
});
const fmtW = (w) => { const a = Math.abs(w); return a < 1000 ? Math.round(a) + ' W' : (a / 1000).toFixed(a < 10000 ? 2 : 1) + ' kW'; };

// The dashboard shows what the API says, within one tick: retry until a read of the page and a
// read of the API agree (each tick may land between the two reads).
async function matches(what, expected) {
  let last = '';
  for (let i = 0; i < 40; i++) {
    const want = await expected();
    const got = await readTiles();
    if (want && got.solar) {
      const diffs = [];
      for (const k of ['solar', 'load', 'battery', 'site']) {
        if (Math.abs(got[k].w - want[k]) > 1) diffs.push(`${k} page ${got[k].w} api ${want[k]}`);
        if (got[k].text !== fmtW(got[k].w)) diffs.push(`${k} text "${got[k].text}"`);
      }
      if (want.soe != null && (got.soe == null || Math.abs(got.soe - want.soe) > 0.05)) diffs.push(`soe page ${got.soe} api ${want.soe}`);
      if (got.soe != null && got.soeText !== String(Math.round(got.soe))) diffs.push(`soe text "${got.soeText}"`);
      if (!diffs.length) return `solar ${got.solar.text}, home ${got.load.text}, battery ${got.battery.text}, grid ${got.site.text}, soe ${got.soeText}%`;
      last = diffs.join('; ');
    } else last = 'no data yet';
    await sleep(250);
  }
  throw new Error(`${what}: ${last}`);
}
const legacyValues = async () => {
  const [a, s] = await Promise.all([api('api/meters/aggregates'), api('api/system_status/soe')]);
  if (!a || !a.site) return null;
  return { site: a.site.instant_power, solar: a.solar.instant_power, battery: a.battery.instant_power, load: a.load.instant_power, soe: s ? s.percentage : null };
};
const aggregateValues = async () => {
  const [p, s] = await Promise.all([api('api/aggregate/power'), api('api/aggregate/soe')]);
  return p ? { site: p.site, solar: p.solar, battery: p.battery, load: p.load, soe: s ? s.percentage : null } : null;
};
const gatewayValues = (id) => async () => {
  const g = await api('api/gateways/' + encodeURIComponent(id));
  const s = g && g.summary;
  return s ? { site: s.site, solar: s.solar, battery: s.battery, load: s.load, soe: s.soe_app } : null;
};

try {
  await nav(page, () => page.goto(BASE, { waitUntil: 'load' }));
  await check('dashboard loads with live data', async () => {
    await page.waitForFunction(() => document.getElementById('m-solar').dataset.w !== '', null, { timeout: 15000 });
    return await page.evaluate(() => document.getElementById('conn').textContent.trim());
  });
  await check('demo banner says the data is simulated', async () => page.locator('#demo').isVisible());
  await check('no external resources, total page weight small', async () => {
    const kb = await page.evaluate(() => Math.round(performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))
      .filter((e) => !/\/(api|ws|json|stats|soe|aggregates|pod)\b/.test(new URL(e.name).pathname)).reduce((a, e) => a + (e.decodedBodySize || 0), 0) / 1024));
    if (kb > 150) throw new Error(`${kb} KB of static files`);
    return `${kb} KB static`;
  });

  if (v2) {
    const def = arg('--default-gateway') || gateways[0].id; // the gateway the legacy routes serve
    await check(`gateway "${def}" numbers match /api/meters/aggregates and /api/system_status/soe`, async () => {
      if (gateways.length > 1) await page.click(`#gwsel button[data-id="${def}"]`);
      else await page.evaluate((id) => { location.hash = 'gw=' + id; }, def);
      await until('selection', () => page.evaluate((id) => document.querySelector(`#gwlist li.sel[data-id="${id}"]`) !== null, def));
      return matches('default gateway', legacyValues);
    });
    await check(`gateway "${def}" numbers match /api/gateways/${def}`, () => matches('gateway summary', gatewayValues(def)));
    await check('live over WebSocket', () => until('Live', async () => (await page.textContent('#conn')).includes('Live') && 'Live'));
    await check('falls back to REST polling when the WebSocket drops, then reconnects', async () => {
      wsCtl.block = true;
      for (const ws of wsCtl.open) await ws.close({ code: 1011, reason: 'cut by the test' }).catch(() => {});
      wsCtl.open.clear();
      await until('Polling', async () => (await page.textContent('#conn')).includes('Polling'), 6000);
      const before = await page.evaluate(() => document.getElementById('stamp').textContent);
      await until('polled data', async () => (await page.evaluate(() => document.getElementById('stamp').textContent)) !== before, 8000);
      await matches('while polling', gatewayValues(def));
      wsCtl.block = false;
      // the page retries with back-off (1, 2, 4 … 30 s, ±25 %): on a loaded machine the block above can
      // outlast several attempts, so allow one full back-off step (37.5 s) for the next one
      await until('Live again', async () => (await page.textContent('#conn')).includes('Live'), 40000);
      return 'Live → Polling → Live';
    });
    await check('"All sites" shows /api/aggregate/power and /api/aggregate/soe', async () => {
      if (gateways.length > 1) await page.click('#gwsel button[data-id="aggregate"]');
      else await page.evaluate(() => { location.hash = 'gw=aggregate'; });
      await until('All sites title', async () => (await page.textContent('#site')) === 'All sites');
      return matches('aggregate', aggregateValues);
    });
    for (const g of gateways.slice(1)) {
      await check(`switch to gateway "${g.id}"`, async () => {
        await page.click(`#gwsel button[data-id="${g.id}"]`);
        await until('pressed', () => page.evaluate((id) => document.querySelector(`#gwsel button[data-id="${id}"]`).getAttribute('aria-pressed') === 'true', g.id));
        return matches(g.id, gatewayValues(g.id));
      });
    }
    if (CONTROL) {
      const card = () => page.evaluate(() => ({ card: !document.getElementById('ctl').hidden, form: !document.getElementById('c-form').hidden, note: document.getElementById('c-note').hidden ? '' : document.getElementById('c-note').textContent }));
      const summaryReserve = async () => { const g = await api('api/gateways/' + CONTROL); return g && g.summary ? g.summary.reserve : null; };
      const pick = async (id) => {
        await page.click(`#gwsel button[data-id="${id}"]`);
        await until('pressed', () => page.evaluate((x) => document.querySelector(`#gwsel button[data-id="${x}"]`).getAttribute('aria-pressed') === 'true', id));
      };
      const msg = () => page.textContent('#c-msg');
      const setRange = (v) => page.evaluate((x) => { const r = document.getElementById('c-reserve'); r.value = String(x); r.dispatchEvent(new Event('input', { bubbles: true })); }, v);
      await check('control card: shown (control is on), read-only note for a gateway without a write path', async () => {
        const other = gateways.find((g) => g.id !== CONTROL);
        await pick(other.id);
        const c = await until('card', async () => { const x = await card(); return x.card && !x.form && x.note && x; });
        return c.note;
      });
      let target = 0;
      await check(`control card: "${CONTROL}" shows its current reserve, mode and grid settings`, async () => {
        await pick(CONTROL);
        await until('form', async () => (await card()).form && (await page.textContent('#c-reserve-v')) !== '—');
        const now = await summaryReserve();
        const shown = await page.textContent('#c-reserve-v');
        if (shown !== Math.round(now) + '%') throw new Error(`shows ${shown}, summary reserve ${now}`);
        target = Math.round(now) === 35 ? 45 : 35;
        return `${shown}, mode ${await page.$eval('#c-mode', (e) => e.value)}, token asked: ${await page.isVisible('#c-token')}`;
      });
      await check('control card: a confirmation comes first, Cancel writes nothing', async () => {
        const before = await summaryReserve();
        await setRange(target);
        await page.fill('#c-token', 'typed-but-cancelled');
        await page.click('#c-apply');
        const q = await until('confirmation', async () => (await page.isVisible('#c-confirm')) && page.textContent('#c-confirm-t'));
        if (!q.includes(`${target}%`)) throw new Error(q);
        await page.click('#c-no');
        await sleep(2500);
        if ((await summaryReserve()) !== before) throw new Error('the reserve changed');
        return q;
      });
      await check('control card: a wrong token is refused and asked again', async () => {
        expect401 = true;
        await page.fill('#c-token', 'not-the-token');
        await page.click('#c-apply');
        await page.click('#c-yes');
        const m = await until('refusal', async () => { const t = await msg(); return /refused/.test(t) && t; });
        await sleep(300);
        expect401 = false;
        if (!(await page.isVisible('#c-token'))) throw new Error('token field hidden');
        return m;
      });
      await check('control card: the new reserve is written and shows after the next poll', async () => {
        await page.fill('#c-token', CONTROL_TOKEN);
        if ((await page.textContent('#c-reserve-v')) !== `${target}%`) await setRange(target);
        await page.click('#c-apply');
        await page.click('#c-yes');
        const m = await until('done', async () => { const t = await msg(); return /^Done/.test(t) && t; }, 20000);
        const r = await summaryReserve();
        if (Math.round(r) !== target) throw new Error(`summary reserve ${r}`);
        // the card reads the value back; the battery bar follows with the next summary
        await until(`bar says Reserve ${target}%`, async () => (await page.textContent('#soe-res-l')) === `Reserve ${target}%`);
        if (await page.isVisible('#c-token')) throw new Error('token asked again');
        const kept = await page.evaluate(() => Object.keys(sessionStorage).some((k) => k.endsWith('control-token')));
        if (!kept) throw new Error('token not in sessionStorage');
        return m;
      });
      await check('control card: the token is asked once; a mode change uses it', async () => {
        const want = (await page.$eval('#c-mode', (e) => e.value)) === 'backup' ? 'self_consumption' : 'backup';
        await page.selectOption('#c-mode', want);
        await page.click('#c-apply');
        await page.click('#c-yes');
        await until('done', async () => /^Done/.test(await msg()), 20000);
        const m = await api(`api/gateways/${CONTROL}/control/mode`);
        if (!m || m.mode !== want) throw new Error(JSON.stringify(m));
        await page.screenshot({ path: path.join(OUT, 'control-dark.png'), fullPage: true });
        await page.setViewportSize({ width: 390, height: 844 });
        await sleep(300);
        await page.locator('#ctl').screenshot({ path: path.join(OUT, 'control-phone-dark.png') });
        const over = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
        await page.setViewportSize({ width: 1366, height: 900 });
        if (over > 0) throw new Error(`phone: ${over}px wider than the screen`);
        // back to the last gateway, which the reload check expects
        await pick(gateways[gateways.length - 1].id);
        return want;
      });
    } else {
      await check('control card hidden while control is off', async () => page.evaluate(() => document.getElementById('ctl').hidden));
    }
    await check('selection survives a reload', async () => {
      await nav(page, () => page.reload({ waitUntil: 'load' }));
      const want = gateways.length > 1 ? gateways[gateways.length - 1].id : 'aggregate';
      await until('selection restored', () => page.evaluate((id) => (id === 'aggregate' ? document.getElementById('site').textContent === 'All sites' : !!document.querySelector(`#gwlist li.sel[data-id="${id}"]`)), want));
      await page.waitForFunction(() => document.getElementById('m-solar').dataset.w !== '', null, { timeout: 10000 });
    });
  } else {
    await check('numbers match /api/meters/aggregates and /api/system_status/soe', () => matches('legacy', legacyValues));
  }

  await check('gateway list shows state and age', async () => {
    const t = await until('gateway rows', () => page.evaluate(() => {
      const li = document.querySelector('#gwlist li');
      return li && /online|stale|offline|connecting|cooldown/.test(li.textContent) && /updated/.test(li.textContent) && li.innerText.replace(/\s+/g, ' ');
    }));
    return t;
  });
  await check('history chart draws', async () => {
    await page.click('#ranges button[data-r="3600"]');
    await until('chart', () => page.evaluate(() => !!document.querySelector('#c-power svg') && !!document.querySelector('#c-soe svg')));
    await page.click('#ranges button[data-r="86400"]');
    return page.evaluate(() => `${document.querySelectorAll('#c-power path.ln').length} power series`);
  });
  await check('history hover tooltip', async () => {
    await page.locator('#c-power').scrollIntoViewIfNeeded();
    const box = await page.locator('#c-power').boundingBox();
    await page.mouse.move(box.x + box.width - 30, box.y + box.height / 2);
    await page.mouse.move(box.x + box.width - 20, box.y + box.height / 2);
    await sleep(100);
    const vis = await page.evaluate(() => !document.getElementById('tip').hidden);
    const text = vis && await page.evaluate(() => document.getElementById('tip').innerText.replace(/\s+/g, ' '));
    await page.mouse.move(0, 0);
    await page.evaluate(() => scrollTo(0, 0));
    if (!vis) throw new Error('no tooltip');
    return text;
  });

  // Themes: follows prefers-color-scheme, the toggle flips and is remembered.
  const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.screenshot({ path: path.join(OUT, 'desktop-dark.png'), fullPage: true });
  await check('theme follows prefers-color-scheme (dark)', async () => (await page.evaluate(() => document.documentElement.dataset.effective)) === 'dark');
  await check('theme toggle switches to light and persists after reload', async () => {
    const before = await bg();
    await page.click('#theme');
    await until('light theme', async () => (await page.evaluate(() => document.documentElement.dataset.effective)) === 'light');
    const after = await bg();
    if (after === before) throw new Error(`background unchanged (${after})`);
    await nav(page, () => page.reload({ waitUntil: 'load' }));
    const eff = await page.evaluate(() => document.documentElement.dataset.effective);
    if (eff !== 'light' || (await bg()) !== after) throw new Error(`after reload: ${eff}`);
    await page.waitForFunction(() => document.getElementById('m-solar').dataset.w !== '', null, { timeout: 10000 });
    await sleep(300);
    return `${before} → ${after}`;
  });
  await page.screenshot({ path: path.join(OUT, 'desktop-light.png'), fullPage: true });

  await check('phone layout (390×844) has no horizontal overflow', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await sleep(400);
    await page.screenshot({ path: path.join(OUT, 'phone-light.png'), fullPage: true });
    await page.click('#theme');
    await sleep(300);
    await page.screenshot({ path: path.join(OUT, 'phone-dark.png'), fullPage: true });
    const over = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
    if (over > 0) throw new Error(`${over}px wider than the screen`);
  });
  await page.setViewportSize({ width: 1366, height: 900 });

  // The compact power-flow view: ?style=…, /flow and inside an iframe (Grafana).
  const flow = await ctx.newPage();
  watch(flow, 'flow');
  const flowCheck = async (url, style, bgWant, shot) => {
    await nav(flow, () => flow.goto(url, { waitUntil: 'load' }));
    await flow.waitForFunction(() => document.querySelector('#flow svg .node.solar .fv') && document.querySelector('#flow svg .node.solar .fv').textContent !== '', null, { timeout: 10000 });
    const st = await flow.evaluate(() => ({ mode: document.documentElement.dataset.mode, style: document.documentElement.dataset.style, bg: getComputedStyle(document.body).backgroundColor, dash: !!document.querySelector('.wrap') && getComputedStyle(document.querySelector('.wrap')).display, svg: document.querySelector('#flow svg').getBoundingClientRect().height }));
    if (st.mode !== 'flow') throw new Error('not the flow view');
    if (st.style !== style) throw new Error(`style ${st.style}`);
    if (bgWant && st.bg !== bgWant) throw new Error(`background ${st.bg}, want ${bgWant}`);
    if (st.dash && st.dash !== 'none') throw new Error('dashboard visible');
    if (st.svg < 200) throw new Error(`diagram only ${st.svg}px high`);
    await sleep(800); // the flow lines fade in
    if (shot) await flow.screenshot({ path: path.join(OUT, shot) });
    return `${style}, ${st.bg}`;
  };
  await flow.setViewportSize({ width: 640, height: 460 });
  await check('/?style=grafana-dark shows the compact power flow', () => flowCheck(BASE + '?style=grafana-dark', 'grafana-dark', 'rgb(24, 27, 31)', 'flow-grafana-dark.png'));
  await check('/?style=white', () => flowCheck(BASE + '?style=white', 'white', 'rgb(255, 255, 255)', 'flow-white.png'));
  await check('/?style=clear has a transparent background', () => flowCheck(BASE + '?style=clear', 'clear', 'rgba(0, 0, 0, 0)'));
  await check('/flow uses the configured style (/stats PW_STYLE)', async () => {
    const st = await api('stats');
    const want = String((st && st.config && st.config.PW_STYLE) || 'clear').replace(/\.js$/, '');
    const r = await fetch(BASE + 'flow');
    const url = (r.headers.get('content-type') || '').includes('html') ? BASE + 'flow' : BASE + 'flow.html';
    return (await flowCheck(url, want, null, 'flow-default.png')) + (url.endsWith('.html') ? ' — /flow not served, used /flow.html' : '');
  });
  await check('inside an iframe / shows the power flow only', async () => {
    const parent = `<!doctype html><body style="margin:0;background:#111217"><iframe title="flow" src="${BASE}" style="border:0;width:600px;height:420px"></iframe></body>`;
    // a same-origin parent page (a data: parent is refused loopback access by Chromium), served by the test
    const host = BASE + '__test-grafana-panel.html';
    await flow.route(host, (r) => r.fulfill({ status: 200, contentType: 'text/html', body: parent }));
    await nav(flow, () => flow.goto(host, { waitUntil: 'load' }));
    const frame = await until('iframe', async () => flow.frames().find((f) => f !== flow.mainFrame() && f.url().startsWith(BASE)));
    await frame.waitForFunction(() => document.querySelector('#flow svg .node.solar .fv') && document.querySelector('#flow svg .node.solar .fv').textContent !== '', null, { timeout: 10000 });
    await sleep(800);
    const mode = await frame.evaluate(() => [document.documentElement.dataset.mode, document.documentElement.dataset.style, getComputedStyle(document.querySelector('.wrap')).display].join(' '));
    await flow.screenshot({ path: path.join(OUT, 'flow-iframe.png') });
    if (!mode.startsWith('flow ') || !mode.endsWith(' none')) throw new Error(mode);
    return mode;
  });

  await check("dashboard's today kWh equals /api/timeseries/today", async () => {
    const sel = await page.evaluate(() => (document.getElementById('site').textContent === 'All sites' ? 'aggregate' : (document.querySelector('#gwlist li.sel') || {}).dataset?.id));
    return until('today', async () => {
      const t = await api('api/timeseries/today' + (sel && sel !== 'aggregate' ? '?gateway=' + sel : ''));
      const d = sel && sel !== 'aggregate' ? t.gateways[sel] : t.total;
      const want = `solar ${kwh(d.solar_kwh)} · home ${kwh(d.home_kwh)} · grid ${kwh(d.grid_import_kwh)} in, ${kwh(d.grid_export_kwh)} out`;
      const got = await page.textContent('#today');
      return got === want && `${sel}: ${got}`;
    }, 15000);
  });
  // The History page: tiles equal the API's answer for the same query, with the page's rounding.
  const hist = await ctx.newPage();
  watch(hist, 'history');
  const histCheck = async (r, gw) => {
    await hist.click(`#ranges button[data-r="${r}"]`);
    await hist.click(`#gwsel button[data-id="${gw}"]`);
    await until('loaded', () => hist.evaluate((x) => location.hash.includes('gw=' + x) && document.getElementById('e-solar').textContent !== '—' && document.querySelector('#c-power svg path.ln'), gw));
    const days = { '7d': 7, '30d': 30 }[r];
    const q = `api/timeseries/daily?days=${days}` + (gw === 'aggregate' ? '' : `&gateway=${gw}`);
    return until(`tiles equal ${q}`, async () => {
      const d = await api(q);
      const sum = (k) => d.days.reduce((a, x) => a + ((gw === 'aggregate' ? x.total : x.gateways[gw]) || {})[k] || 0, 0);
      const want = { 'e-solar': kwh(sum('solar_kwh')), 'e-home': kwh(sum('home_kwh')), 'e-import': kwh(sum('grid_import_kwh')), 'e-export': kwh(sum('grid_export_kwh')), 'e-bin': kwh(sum('battery_charge_kwh')), 'e-bout': kwh(sum('battery_discharge_kwh')) };
      const got = await hist.evaluate((ids) => Object.fromEntries(ids.map((i) => [i, document.getElementById(i).textContent])), Object.keys(want));
      return JSON.stringify(got) === JSON.stringify(want) && `${r} ${gw}: solar ${got['e-solar']}, home ${got['e-home']}`;
    });
  };
  await check('/history loads behind the prefix, 7d All sites tiles equal /api/timeseries/daily', async () => {
    await nav(hist, () => hist.goto(new URL((PREFIX || '/') + 'history', BASE).href, { waitUntil: 'load' }));
    return histCheck('7d', 'aggregate');
  });
  const hg = v2 && (gateways.find((g) => g.simulated && g.id === "demo") || gateways[0]);
  if (hg) await check(`/history 30d for gateway "${hg.id}" equals the API`, () => histCheck("30d", hg.id));
  await hist.screenshot({ path: path.join(OUT, 'history-dark.png'), fullPage: true });
  await check('/history on a phone has no horizontal overflow (light)', async () => {
    await hist.click('#theme');
    await hist.setViewportSize({ width: 390, height: 844 });
    await sleep(300);
    await hist.screenshot({ path: path.join(OUT, 'history-phone-light.png'), fullPage: true });
    const over = await hist.evaluate(() => document.documentElement.scrollWidth - innerWidth);
    if (over > 0) throw new Error(`${over}px wider than the screen`);
  });
  await nav(hist, () => hist.close());

  if (PREFIX) {
    await check(`works behind the path prefix ${PREFIX}`, async () => {
      const p = await ctx.newPage();
      watch(p, 'prefix');
      const seen = [];
      p.on('request', (r) => seen.push(new URL(r.url()).pathname));
      await p.goto(new URL(PREFIX, BASE).href, { waitUntil: 'load' });
      await p.waitForFunction(() => document.getElementById('m-solar').dataset.w !== '', null, { timeout: 10000 });
      const outside = seen.filter((s) => !s.startsWith(PREFIX));
      await nav(p, () => p.close());
      if (outside.length) throw new Error('requests outside the prefix: ' + outside.join(', '));
      return `${seen.length} requests under ${PREFIX}`;
    });
  }
  await nav(flow, () => flow.close());
  await sleep(300);
} catch (e) {
  bad('check run', e.stack || e.message);
} finally {
  await nav(page, () => ctx.close()).catch(() => {});
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
if (problems.length) {
  bad('no console errors, failed or external requests', `${problems.length} problem(s)`);
  for (const p of [...new Set(problems)].slice(0, 30)) console.log('     ' + p);
} else ok('no console errors, failed or external requests');
console.log(`screenshots in ${OUT}`);
console.log(`ui: ${passed} passed, ${failed} failed (${((Date.now() - started) / 1000).toFixed(1)} s)`);
process.exit(failed ? 1 : 0);
