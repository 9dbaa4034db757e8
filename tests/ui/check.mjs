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
const OUT = path.resolve(arg('--out') || path.join(here, '../../target/ui-shots'));
const EXE = process.env.CHROMIUM || '/usr/bin/chromium';
const CONTROL = arg('--control');          // a gateway the control card can write to
const CONTROL_TOKEN = arg('--control-token');
const ORIGIN = new URL(BASE).origin;
const SOLAR = arg('--solar-base');         // a second server: PW_STYLE=solar and an unreachable gateway
const ORIGINS = [ORIGIN].concat(SOLAR ? [new URL(SOLAR).origin] : []);
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
    if (!ORIGINS.some((o) => u.startsWith(o + '/') || u.startsWith(o.replace(/^http/, 'ws') + '/')) && !u.startsWith('data:') && !u.startsWith('about:')) problems.push(`${label} external request: ${u}`);
  });
}
async function nav(page, fn) { navigating = true; try { await fn(); } finally { navigating = false; } }

const page = ctx.pages()[0] || await ctx.newPage();
watch(page, 'dashboard');
// WebSockets pass through untouched until a check cuts them (to see the REST fallback).
// `rewrite` edits the server's summaries on their way to the page (the threshold check feeds a
// 22 W battery through the real socket).
const wsCtl = { block: false, open: new Set(), rewrite: null };
await page.routeWebSocket(/\/ws\//, (ws) => {
  if (wsCtl.block) { ws.close({ code: 1011, reason: 'cut by the test' }); return; }
  const server = ws.connectToServer();
  server.onMessage((m) => {
    if (!wsCtl.rewrite || typeof m !== 'string') { ws.send(m); return; }
    try { ws.send(JSON.stringify(wsCtl.rewrite(JSON.parse(m)))); } catch (e) { ws.send(m); }
  });
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

  // ---- the console cards (Powerwalls, strings, alerts, health), each equal to the JSON API ----
  if (v2) {
    const appPct = (rem, full) => Math.round(Math.min(100, Math.max(0, ((100 * rem) / full - 5) / 0.95))) + '%';
    const pickGw = async (id) => {
      if (gateways.length > 1) await page.click(`#gwsel button[data-id="${id}"]`);
      else await page.evaluate((x) => { location.hash = 'gw=' + x; }, id);
      await until('selected ' + id, () => page.evaluate((x) => (x === 'aggregate' ? document.getElementById('site').textContent === 'All sites' : !!document.querySelector(`#gwlist li.sel[data-id="${x}"]`)), id));
    };
    const unitRows = () => page.evaluate(() => [...document.querySelectorAll('#units tbody tr[data-sn]')].map((tr) => ({
      sn: tr.dataset.sn, gw: tr.dataset.gw, charge: tr.querySelector('.u-c').firstChild.textContent,
      temp: tr.querySelector('.u-t').textContent, fw: tr.querySelector('.u-v').textContent })));
    const online = gateways.filter((g) => g.state === 'online');
    // the LAN gateways (a cloud site reports no battery blocks or strings)
    for (const g of online.filter((x) => x.battery_count && x.mode !== 'cloud')) {
      await check(`Powerwalls card for "${g.id}" equals /api/gateways/${g.id}/battery (one row per unit, followers included)`, async () => {
        await pickGw(g.id);
        return until('units', async () => {
          const [bb, info, rows] = [await api(`api/gateways/${g.id}/battery`), await api(`api/gateways/${g.id}`), await unitRows()];
          const want = Object.entries(bb || {}).map(([sn, b]) => ({ sn, gw: g.id, charge: appPct(b.nominal_energy_remaining, b.nominal_full_pack_energy),
            temp: b.temperature != null ? b.temperature.toFixed(1) + ' °C' : null, fw: String(b.version || info.firmware).split(' ')[0] }));
          if (!want.length || rows.length !== want.length) return false;
          for (const [i, w] of want.entries()) {
            const r = rows[i];
            if (r.sn !== w.sn || r.charge !== w.charge || r.fw !== w.fw || (w.temp && r.temp !== w.temp)) return false;
          }
          return rows.map((r) => `${r.sn} ${r.charge} ${r.temp} fw ${r.fw}`).join('; ');
        }, 25000);
      });
      await check(`solar strings card for "${g.id}" equals /api/gateways/${g.id}/strings${g.pw3 ? ' (with MPPT pairs)' : ''}`, async () => {
        return until('strings', async () => {
          const st = await api(`api/gateways/${g.id}/strings`);
          const rows = await page.evaluate(() => [...document.querySelectorAll('#strings tbody tr[data-s]')].map((tr) => [tr.className, ...[...tr.children].map((c) => c.textContent)]));
          const byName = Object.fromEntries(rows.map((r) => [r[1], r]));
          const shown = Object.keys(st).filter((k) => st[k].Connected || Math.abs(st[k].Power) >= 1);
          if (!shown.length) return false;
          for (const k of shown) {
            const r = byName[k], s = st[k];
            if (!r || r[2] !== s.Voltage.toFixed(1) || r[3] !== s.Current.toFixed(2) || r[4] !== String(Math.round(s.Power))) return false;
          }
          if (g.pw3) {
            const a = st.A, b = st.B, r = byName.AB;
            if (!r || r[0] !== 'pair' || r[2] !== a.Voltage.toFixed(1) || r[3] !== (a.Current + b.Current).toFixed(2) || r[4] !== String(Math.round(a.Power + b.Power))) return false;
          }
          return `${shown.length} strings` + (g.pw3 ? ', AB pair ' + byName.AB.slice(2).join(' / ') : '');
        }, 25000);
      });
      await check(`alerts card for "${g.id}" equals /api/gateways/${g.id}/alerts (raw name on hover, severity class)`, async () => {
        return until('alerts', async () => {
          const want = await api(`api/gateways/${g.id}/alerts`);
          const got = await page.evaluate(() => [...document.querySelectorAll('#alerts li.al')].map((li) => [li.title, li.className]));
          if (JSON.stringify(got.map((x) => x[0]).sort()) !== JSON.stringify([...want].sort())) return false;
          if (got.some(([, c]) => !/\b(info|warning|critical)\b/.test(c))) return false;
          const cg = got.find(([t]) => t === 'SystemConnectedToGrid');
          if (cg && !cg[1].includes('info')) return false;
          return got.map((x) => x[0]).join(', ') || 'none';
        }, 15000);
      });
      await check(`system health card for "${g.id}" equals /api/gateways/${g.id} and /health`, async () => {
        return until('health', async () => {
          const [info, h] = [await api(`api/gateways/${g.id}`), await api('health')];
          const got = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('#health dd[data-k]')].map((d) => [d.dataset.k, d.textContent])));
          const ok = got.state === info.state && got.firmware === info.firmware && got.mode === [info.mode, info.host].filter(Boolean).join(' · ') &&
            got.failures === String(info.health.consecutive_failures) && got.error === (info.health.last_error || 'none') && !!got.uptime && /WebSocket|REST/.test(got.transport || '');
          return ok && h && `${got.state}, ${got.mode}, fw ${got.firmware}, uptime ${got.uptime}, ${got.transport}`;
        }, 15000);
      });
    }
    await check('"All sites": Powerwalls and alerts cards combine every gateway', async () => {
      await pickGw('aggregate');
      return until('combined', async () => {
        let units = 0, alerts = 0;
        for (const g of gateways) {
          const bb = await api(`api/gateways/${g.id}/battery`), al = await api(`api/gateways/${g.id}/alerts`);
          units += bb && typeof bb === 'object' ? Object.keys(bb).length : 0;
          alerts += Array.isArray(al) ? al.length : 0;
        }
        const got = await page.evaluate(() => [document.querySelectorAll('#units tbody tr[data-sn]').length, document.querySelectorAll('#alerts li.al').length, new Set([...document.querySelectorAll('#units tbody tr[data-sn]')].map((t) => t.dataset.gw)).size]);
        return got[0] === units && got[1] === alerts && `${units} units from ${got[2]} gateways, ${alerts} alerts`;
      }, 15000);
    });
    await check('subtitle never repeats itself', async () => {
      const out = [];
      for (const g of gateways) {
        await pickGw(g.id);
        const sub = await until('subtitle', async () => { const t = await page.textContent('#sub'); return t && t !== 'Connecting…' && t; });
        const parts = sub.split(' · ').map((x) => x.toLowerCase());
        if (parts.some((x, i) => parts.some((y, j) => i !== j && y.includes(x)))) throw new Error(`"${sub}"`);
        out.push(sub);
      }
      return out.join(' | ');
    });
    await check('gateway rows are not cut off (desktop and phone)', async () => {
      const cut = () => page.evaluate(() => [...document.querySelectorAll('#gwlist .gw-m, #gwlist .gw-n')].filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent));
      const a = await cut();
      await page.setViewportSize({ width: 390, height: 844 });
      await sleep(300);
      const b = await cut();
      await page.setViewportSize({ width: 1366, height: 900 });
      if (a.length || b.length) throw new Error('cut: ' + a.concat(b).join(' | '));
      return page.evaluate(() => [...document.querySelectorAll('#gwlist .gw-m')].map((e) => e.textContent).join(' | '));
    });
    const fresh = gateways.find((g) => !g.simulated && g.state === 'online');
    if (fresh) await check(`a fresh gateway's 24 h chart starts at its first point ("${fresh.id}")`, async () => {
      await pickGw(fresh.id);
      await page.click('#ranges button[data-r="86400"]');
      return until('scaled chart', () => page.evaluate(() => {
        const c = document.getElementById('c-power'), paths = [...c.querySelectorAll('path.ln')];
        const xs = paths.flatMap((p) => [...(p.getAttribute('d') || '').matchAll(/[ML]([\d.]+),/g)].map((m) => +m[1]));
        if (!xs.length) return false;
        const span = Date.now() / 1000 - +c.dataset.from, left = Math.min(...xs), w = c.clientWidth;
        // the axis starts at the first point, or shows the 2 min minimum
        return span < 86400 - 3600 && (left < 44 + 0.15 * (w - 50) || span <= 125) && `axis spans ${Math.round(span)} s, first point at x=${left} of ${w}`;
      }), 10000);
    });
    await check('one idle threshold: a 22 W battery is "Discharging" on the tile, the card and the flow; 10 W is idle on all three', async () => {
      const def = gateways.find((g) => g.simulated) || gateways[0];
      await pickGw(def.id);
      await until('Live', async () => (await page.textContent('#conn')).includes('Live'), 15000);
      const read = () => page.evaluate(() => ({ w: document.getElementById('m-battery').dataset.w, tile: document.getElementById('m-battery-s').textContent, card: document.getElementById('b-state').textContent,
        node: document.querySelector('#flow .node.batt').classList.contains('on'), aria: document.querySelector('#flow svg').getAttribute('aria-label') }));
      const out = [];
      for (const [w, word] of [[22, 'Discharging'], [-22, 'Charging'], [10, 'Idle']]) {
        wsCtl.rewrite = (j) => { j.battery = w; j.soe_app = 50; return j; };
        const r = await until(`${w} W shown`, async () => { const x = await read(); return x.w === String(w) && x; });
        const idle = word === 'Idle';
        if (r.tile !== word || r.card !== word || r.node === idle || !r.aria.includes(word.toLowerCase())) throw new Error(JSON.stringify(r));
        out.push(`${w} W: ${r.tile}/${r.card}/${r.node ? 'flow on' : 'flow idle'}`);
      }
      wsCtl.rewrite = null;
      return out.join('; ');
    });
    await check('/console answers with the dashboard, /history with the history page', async () => {
      const out = [];
      for (const [p, id] of [['console', 'flow'], ['history', 'e-solar']]) {
        const r = await fetch(new URL(p, BASE));
        const t = await r.text();
        if (r.status !== 200 || !(r.headers.get('content-type') || '').includes('html') || !t.includes(`id="${id}"`)) throw new Error(`${p}: ${r.status} ${t.slice(0, 40)}`);
        out.push(`/${p} ${t.length} B`);
      }
      const p = await ctx.newPage();
      watch(p, 'console');
      await nav(p, () => p.goto(new URL('console', BASE).href, { waitUntil: 'load' }));
      await p.waitForFunction(() => document.getElementById('m-solar').dataset.w !== '', null, { timeout: 10000 });
      await nav(p, () => p.close());
      return out.join(', ') + ', /console shows live data';
    });
    await check('kiosk mode at 1920×1080: no chrome, hidden cards absent, nothing to scroll', async () => {
      const k = await ctx.newPage();
      watch(k, 'kiosk');
      await k.setViewportSize({ width: 1920, height: 1080 });
      const out = [];
      for (const [q, hidden, shot] of [['?kiosk=1', [], 'kiosk.png'], ['?kiosk=1&hide=history,gateways', ['history', 'gateways'], 'kiosk-hide.png']]) {
        await nav(k, () => k.goto(BASE + q, { waitUntil: 'load' }));
        await k.waitForFunction(() => document.getElementById('m-solar').dataset.w !== '' && document.querySelector('#units tbody tr'), null, { timeout: 15000 });
        await sleep(1200);
        const r = await k.evaluate((hid) => {
          const vis = (e) => !!e && e.getClientRects().length > 0 && getComputedStyle(e).display !== 'none';
          return { chrome: ['.top', '.foot', '#gwsel'].filter((s) => vis(document.querySelector(s))), gone: hid.filter((c) => vis(document.querySelector(`[data-card="${c}"]`))),
            shown: ['flow', 'powerwalls', 'alerts', 'strings', 'health'].filter((c) => vis(document.querySelector(`[data-card="${c}"]`))).length,
            sh: document.documentElement.scrollHeight, sw: document.documentElement.scrollWidth, bh: document.body.scrollHeight, h: innerHeight, w: innerWidth };
        }, hidden);
        await k.screenshot({ path: path.join(OUT, shot) });
        if (r.chrome.length) throw new Error(`${q}: chrome visible: ${r.chrome}`);
        if (r.gone.length) throw new Error(`${q}: not hidden: ${r.gone}`);
        if (r.shown !== 5) throw new Error(`${q}: only ${r.shown} of the five main cards shown`);
        if (Math.max(r.sh, r.bh) > r.h || r.sw > r.w) throw new Error(`${q}: document ${r.sw}×${Math.max(r.sh, r.bh)} in ${r.w}×${r.h}`);
        out.push(`${q}: ${r.sw}×${r.sh}`);
      }
      await nav(k, () => k.close());
      return out.join('; ');
    });
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
  await check('phone: the power flow comes first and is large (circles ≥ 70 px)', async () => {
    const r = await page.evaluate(() => {
      const ring = document.querySelector('#flow .node.solar circle.ring').getBoundingClientRect();
      const top = (s) => document.querySelector(s).getBoundingClientRect().top;
      return { d: Math.round(ring.width), geom: document.querySelector('#flow svg').dataset.geom, first: top('[data-card=flow]') < Math.min(top('[data-card=tiles]'), top('[data-card=gateways]'), top('[data-card=powerwalls]')) };
    });
    if (r.d < 70 || !r.first) throw new Error(JSON.stringify(r));
    return `${r.geom} layout, circles ${r.d} px`;
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

  if (SOLAR) {
    const sp = await ctx.newPage();
    watch(sp, 'solar');
    await sp.setViewportSize({ width: 1366, height: 900 });
    const vis = (sel) => sp.evaluate((s) => [...document.querySelectorAll(s)].some((e) => e.getClientRects().length > 0 && getComputedStyle(e).display !== 'none'), sel);
    await check('PW_STYLE=solar: no Powerwall node, charge, tile or Powerwall cards on the dashboard', async () => {
      await nav(sp, () => sp.goto(SOLAR + '#gw=sun', { waitUntil: 'load' }));
      await sp.waitForFunction(() => document.getElementById('m-solar').dataset.w !== '' && document.documentElement.dataset.nobatt === '1', null, { timeout: 15000 });
      await sleep(500);
      const shown = [];
      for (const s of ['#flow .node.batt', '[data-card=battery]', '.tile.batt', '[data-card=powerwalls]', '#c-soe']) if (await vis(s)) shown.push(s);
      if (shown.length) throw new Error('visible: ' + shown.join(', '));
      if (!(await vis('#flow .node.solar')) || !(await vis('.tile.solar'))) throw new Error('solar missing');
      await sp.screenshot({ path: path.join(OUT, 'solar-style.png'), fullPage: true });
      return 'battery hidden, solar shown';
    });
    await check('PW_STYLE=solar: /flow has no Powerwall node', async () => {
      await nav(sp, () => sp.goto(SOLAR + 'flow', { waitUntil: 'load' }));
      await sp.waitForFunction(() => document.querySelector('#flow svg .node.solar .fv') && document.querySelector('#flow svg .node.solar .fv').textContent !== '', null, { timeout: 10000 });
      await sleep(500);
      await sp.screenshot({ path: path.join(OUT, 'flow-solar.png') });
      if (await vis('#flow .node.batt')) throw new Error('Powerwall node visible');
      return sp.evaluate(() => document.documentElement.dataset.style);
    });
    await check('an unreachable gateway shows Offline and when it was last seen, no Live pill, no Idle/Standby', async () => {
      await nav(sp, () => sp.goto(SOLAR + '#gw=shed', { waitUntil: 'load' }));
      const r = await until('Offline', async () => {
        const x = await sp.evaluate(() => ({ pill: document.getElementById('conn').textContent.trim(), live: document.getElementById('conn').classList.contains('live'),
          card: document.getElementById('b-state').textContent, time: document.getElementById('b-time').textContent, tile: document.getElementById('m-battery-s').textContent,
          err: (document.querySelector('#health dd[data-k=error]') || {}).textContent }));
        return x.pill === 'Offline' && x;
      }, 15000);
      const info = await (await fetch(SOLAR + 'api/gateways/shed')).json();
      await sp.screenshot({ path: path.join(OUT, 'offline.png'), fullPage: true });
      if (r.live || r.card !== 'Offline' || r.tile !== 'Offline' || /Idle|Standby/.test(r.time + r.card + r.tile)) throw new Error(JSON.stringify(r));
      if (!/^(Last seen|No data since)/.test(r.time)) throw new Error('no last-seen time: ' + r.time);
      await until('health error', async () => (await sp.evaluate(() => (document.querySelector('#health dd[data-k=error]') || {}).textContent)) === info.health.last_error, 15000);
      return `${r.pill}, "${r.time}"`;
    });
    await nav(sp, () => sp.close());
  }

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
