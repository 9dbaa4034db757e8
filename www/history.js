// pypowerwall-server History page (/history): power and battery level from
// /api/timeseries/trend, daily kWh and the range's totals from /api/timeseries/daily (ranges of a
// day or less: the trend's points integrated). Vanilla JS, relative URLs (works behind a prefix).
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id), root = document.documentElement;
  const BASE = location.pathname.replace(/history(?:\.html)?$/, '').replace(/\/?$/, '/');
  const HOURS = { '1h': 1, '6h': 6, '24h': 24, '7d': 168, '30d': 720, '90d': 2160, '1y': 8760, all: 17568 };
  const DAYS = { '7d': 7, '30d': 30, '90d': 90, '1y': 365, all: 1000 };
  const S = { gw: 'aggregate', r: '24h', from: '', to: '' };
  const num = (x) => (typeof x === 'number' && isFinite(x) ? x : 0);
  // The page's rounding, also used by the UI test: one decimal.
  const fmtKwh = (v) => (v == null ? '—' : v.toFixed(1) + ' kWh');

  async function getJSON(p) {
    try {
      const r = await fetch(BASE + p, { cache: 'no-store' });
      return r.ok && (r.headers.get('content-type') || '').includes('json') ? await r.json() : undefined;
    } catch (e) { return undefined; }
  }
  const gwq = () => (S.gw === 'aggregate' ? '' : '&gateway=' + encodeURIComponent(S.gw));
  function queries() {
    if (S.from && S.to) {
      const a = new Date(S.from + 'T00:00').getTime() / 1000, b = new Date(S.to + 'T00:00').getTime() / 1000 + 86400;
      return { trend: `start=${a}&end=${b}`, daily: `start=${S.from}&end=${S.to}`, byDays: true };
    }
    const d = DAYS[S.r];
    return { trend: `hours=${HOURS[S.r]}`, daily: `days=${d || 7}`, byDays: !!d };
  }

  function tiles(t) {
    const set = (id, v) => { const e = $(id); e.dataset.kwh = v == null ? '' : String(v); e.textContent = fmtKwh(v); };
    set('e-solar', t && t.solar); set('e-home', t && t.home); set('e-import', t && t.imp);
    set('e-export', t && t.exp); set('e-bin', t && t.bin); set('e-bout', t && t.bout);
    const self = t && t.home > 0 ? Math.round(100 * Math.min(1, Math.max(0, 1 - t.imp / t.home))) : null;
    $('e-self').textContent = self == null ? '—' : self + '%';
  }
  // Range totals: the sum of the days' rows (total row: all sites), or the trend integrated.
  function fromDays(days) {
    const t = { solar: 0, home: 0, imp: 0, exp: 0, bin: 0, bout: 0 };
    for (const d of days) {
      const x = S.gw === 'aggregate' ? d.total : d.gateways && d.gateways[S.gw];
      if (!x) continue;
      t.solar += num(x.solar_kwh); t.home += num(x.home_kwh); t.imp += num(x.grid_import_kwh);
      t.exp += num(x.grid_export_kwh); t.bin += num(x.battery_charge_kwh); t.bout += num(x.battery_discharge_kwh);
    }
    return t;
  }
  function fromTrend(tr) {
    const h = num(tr.bucket_seconds) / 3600, t = { solar: 0, home: 0, imp: 0, exp: 0, bin: 0, bout: 0 };
    for (const p of tr.points) {
      t.solar += num(p.solar_kw) * h; t.home += num(p.home_kw) * h;
      const g = num(p.grid_kw), b = num(p.battery_kw);
      if (g > 0) t.imp += g * h; else t.exp -= g * h;
      if (b > 0) t.bout += b * h; else t.bin -= b * h;
    }
    return t;
  }

  const SERIES = [['solar_kw', 'solar'], ['home_kw', 'home'], ['battery_kw', 'batt'], ['grid_kw', 'grid']];
  function line(id, pts, keys, lo, hi, scale, area) {
    const host = $(id), W = host.clientWidth, H = host.clientHeight;
    if (!W || !H) return;
    const L = 44, T = 8, B = 20, Rm = 6;
    const from = pts.length ? pts[0].ts : 0, to = pts.length ? pts[pts.length - 1].ts : 1;
    const X = (t) => L + ((t - from) / Math.max(1, to - from)) * (W - L - Rm);
    const Y = (v) => T + (1 - (v - lo) / (hi - lo || 1)) * (H - T - B);
    let s = `<svg viewBox="0 0 ${W} ${H}" aria-hidden="true">`;
    for (const v of [lo, (lo + hi) / 2, hi]) s += `<line class="ax" x1="${L}" x2="${W - Rm}" y1="${Y(v).toFixed(1)}" y2="${Y(v).toFixed(1)}"/><text class="axl" x="${L - 6}" y="${(Y(v) + 3.5).toFixed(1)}" text-anchor="end">${+(v).toFixed(1)}${scale}</text>`;
    for (const t of [from, (from + to) / 2, to]) s += `<text class="axl" x="${X(t).toFixed(1)}" y="${H - 4}" text-anchor="middle">${new Date(t * 1000).toLocaleString([], to - from > 172800 ? { month: 'short', day: 'numeric' } : { hour: '2-digit', minute: '2-digit' })}</text>`;
    if (!pts.length) s += `<text class="empty" x="${(L + W) / 2}" y="${H / 2}">No data</text>`;
    for (const [k, c] of keys) {
      const d = pts.filter((p) => p[k] != null).map((p, i) => (i ? 'L' : 'M') + X(p.ts).toFixed(1) + ',' + Y(p[k]).toFixed(1)).join('');
      const f = pts.filter((p) => p[k] != null), close = area && f.length ? `L${X(f[f.length - 1].ts).toFixed(1)},${Y(0).toFixed(1)}L${X(f[0].ts).toFixed(1)},${Y(0).toFixed(1)}Z` : '';
      s += `<path class="${area ? 'ar' : 'ln ' + c}" d="${d}${close}"/>`;
    }
    host.innerHTML = s + '</svg>';
  }
  function bars(days) {
    const host = $('c-days'), W = host.clientWidth, H = host.clientHeight;
    if (!W || !H) return;
    const rows = days.map((d) => ({ day: d.day, x: S.gw === 'aggregate' ? d.total : (d.gateways || {})[S.gw] })).filter((d) => d.x).reverse();
    const L = 44, T = 8, B = 20, hi = Math.max(1, ...rows.map((d) => Math.max(num(d.x.solar_kwh), num(d.x.home_kwh))));
    const bw = (W - L) / Math.max(1, rows.length), Y = (v) => T + (1 - v / hi) * (H - T - B);
    let s = `<svg viewBox="0 0 ${W} ${H}" aria-hidden="true"><line class="ax" x1="${L}" x2="${W}" y1="${Y(0)}" y2="${Y(0)}"/><text class="axl" x="${L - 6}" y="${Y(hi) + 3.5}" text-anchor="end">${hi.toFixed(0)} kWh</text>`;
    rows.forEach((d, i) => {
      const x = L + i * bw, w = Math.max(1, bw / 2 - 1);
      s += `<rect class="bar-s" x="${x.toFixed(1)}" y="${Y(num(d.x.solar_kwh)).toFixed(1)}" width="${w.toFixed(1)}" height="${(Y(0) - Y(num(d.x.solar_kwh))).toFixed(1)}"><title>${d.day} solar ${fmtKwh(num(d.x.solar_kwh))}</title></rect>`;
      s += `<rect class="bar-h" x="${(x + w).toFixed(1)}" y="${Y(num(d.x.home_kwh)).toFixed(1)}" width="${w.toFixed(1)}" height="${(Y(0) - Y(num(d.x.home_kwh))).toFixed(1)}"><title>${d.day} home ${fmtKwh(num(d.x.home_kwh))}</title></rect>`;
      if (rows.length <= 14) s += `<text class="axl" x="${(x + bw / 2).toFixed(1)}" y="${H - 4}" text-anchor="middle">${d.day.slice(5)}</text>`;
    });
    host.innerHTML = s + '</svg>';
  }

  let gen = 0;
  async function load() {
    const my = ++gen, q = queries();
    location.replace('#gw=' + encodeURIComponent(S.gw) + '&r=' + S.r);
    for (const b of $('ranges').children) b.setAttribute('aria-pressed', String(!S.from && b.dataset.r === S.r));
    for (const b of $('gwsel').children) b.setAttribute('aria-pressed', String(b.dataset.id === S.gw));
    const [tr, dl] = await Promise.all([getJSON(`api/timeseries/trend?${q.trend}${gwq()}`), getJSON(`api/timeseries/daily?${q.daily}${gwq()}`)]);
    if (my !== gen) return;
    const pts = (tr && tr.points) || [], days = (dl && dl.days) || [];
    tiles(q.byDays ? (dl ? fromDays(days) : null) : (tr ? fromTrend(tr) : null));
    $('csv').href = BASE + 'api/timeseries/' + (q.byDays ? 'daily?' + q.daily : 'trend?' + q.trend) + gwq() + '&format=csv';
    let lo = 0, hi = 1;
    for (const p of pts) for (const [k] of SERIES) { lo = Math.min(lo, num(p[k])); hi = Math.max(hi, num(p[k])); }
    line('c-power', pts, SERIES, Math.floor(lo), Math.ceil(hi), ' kW');
    line('c-soe', pts, [['battery_level', 'batt']], 0, 100, '%', true);
    bars(days);
    document.body.dataset.loaded = String(my);
  }

  async function init() {
    const t = root.dataset.theme;
    root.dataset.effective = t === 'dark' || t === 'light' ? t : matchMedia('(prefers-color-scheme: light)').matches ? 'light' : 'dark';
    $('theme').addEventListener('click', () => {
      root.dataset.theme = root.dataset.effective = root.dataset.effective === 'dark' ? 'light' : 'dark';
      try { localStorage.setItem('pw.theme', root.dataset.theme); } catch (e) { /* private mode */ }
    });
    const h = new URLSearchParams(location.hash.slice(1));
    if (HOURS[h.get('r')]) S.r = h.get('r');
    const list = await getJSON('api/gateways');
    const gws = Array.isArray(list) ? list : [];
    if (h.get('gw') && gws.some((g) => g.id === h.get('gw'))) S.gw = h.get('gw');
    for (const g of [{ id: 'aggregate', name: 'All sites' }].concat(gws)) {
      const b = document.createElement('button');
      b.type = 'button'; b.dataset.id = g.id; b.textContent = g.name || g.id;
      b.addEventListener('click', () => { S.gw = g.id; load(); });
      $('gwsel').appendChild(b);
    }
    for (const b of $('ranges').children) b.addEventListener('click', () => { S.r = b.dataset.r; S.from = S.to = ''; $('d-from').value = $('d-to').value = ''; load(); });
    const dates = () => { S.from = $('d-from').value; S.to = $('d-to').value; if (S.from && S.to && S.from <= S.to) load(); };
    $('d-from').addEventListener('change', dates); $('d-to').addEventListener('change', dates);
    const st = await getJSON('api/timeseries/status');
    $('h-note').textContent = st && st.simulated ? 'Demo mode: this history is simulated.' : '';
    load();
  }
  init();
})();
