// pypowerwall-server web UI: dashboard (/) and compact power flow (/flow, ?style=…, iframes).
// Vanilla JS, no dependencies, no external requests. Live over WebSocket with back-off, REST
// polling while the socket is down, and the proxy's legacy routes when the server has no
// multi-gateway API.
(() => {
  'use strict';

  const doc = document, root = doc.documentElement;
  const $ = (id) => doc.getElementById(id);
  const params = new URLSearchParams(location.search);
  const FLOW = root.dataset.mode === 'flow';
  const STYLES = ['clear', 'black', 'white', 'grafana', 'grafana-dark', 'dakboard', 'solar'];
  // Everything is relative to where this page is served, so a reverse-proxy prefix just works.
  const BASE = location.pathname.replace(/(?:index\.html|flow(?:\.html)?|console)$/, '').replace(/\/?$/, '/');
  const SVGNS = 'http://www.w3.org/2000/svg';
  // One threshold for "idle" everywhere (flow lines, nodes, tiles, the battery card, tooltips).
  const IDLE_W = 15;
  const sgn = (w) => (w == null || !(Math.abs(w) >= IDLE_W) ? 0 : w > 0 ? 1 : -1);
  const REDUCED = matchMedia('(prefers-reduced-motion: reduce)').matches;

  const store = {
    get(k) { try { return localStorage.getItem(k); } catch (e) { return null; } },
    set(k, v) { try { localStorage.setItem(k, v); return true; } catch (e) { return false; } },
  };

  // ---- state -------------------------------------------------------------------------------
  const S = {
    api: null,          // 'v2' (multi-gateway API) or 'legacy' (proxy routes only)
    gateways: [],       // [{id, name, state, age, at, …}]
    gwAt: 0,            // when the list was fetched (ms)
    sel: null,          // gateway id, 'aggregate' or 'legacy'
    sum: null,          // latest summary
    sumAt: 0,           // when it arrived (ms)
    transport: 'connecting',
    simulated: false,
    siteName: '',
    range: 86400,
    hist: [],           // [[ts, site, solar, battery, load, soeApp]] oldest first
    bucket: null,
  };

  // ---- small helpers -----------------------------------------------------------------------
  const num = (x) => (typeof x === 'number' && isFinite(x) ? x : null);
  const clamp = (x, a, b) => Math.min(b, Math.max(a, x));
  function fmtW(w) {
    if (w == null) return '—';
    const a = Math.abs(w);
    if (a < 1000) return Math.round(a) + ' W';
    return (a / 1000).toFixed(a < 10000 ? 2 : 1) + ' kW';
  }
  function fmtDur(h) {
    if (h == null || !isFinite(h) || h <= 0) return null;
    if (h > 72) return Math.round(h / 24) + ' days';
    const m = Math.round(h * 60);
    if (m < 60) return m + ' min';
    return Math.floor(m / 60) + ' h ' + String(m % 60).padStart(2, '0') + ' min';
  }
  function fmtAge(s) {
    if (s == null || !isFinite(s)) return 'never';
    s = Math.max(0, s);
    if (s < 5) return 'just now';
    if (s < 90) return Math.round(s) + ' s ago';
    if (s < 5400) return Math.round(s / 60) + ' min ago';
    if (s < 172800) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' days ago';
  }
  const hhmm = (ts) => new Date(ts * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const appScale = (raw) => (raw == null ? null : clamp((raw - 5) / 0.95, 0, 100));
  function el(tag, attrs, parent) {
    const e = doc.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function setText(id, t) { const e = $(id); if (e && e.textContent !== t) e.textContent = t; }

  async function getJSON(path) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 8000);
    try {
      const r = await fetch(BASE + path, { cache: 'no-store', signal: ctl.signal });
      // The proxy answers unknown paths "Not Found" as text; only JSON counts as an answer.
      if (!r.ok || !(r.headers.get('content-type') || '').includes('json')) return undefined;
      return await r.json();
    } catch (e) {
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- theme and style ---------------------------------------------------------------------
  const mqLight = matchMedia('(prefers-color-scheme: light)');
  function effectiveTheme() {
    const t = root.dataset.theme;
    return t === 'dark' || t === 'light' ? t : (mqLight.matches ? 'light' : 'dark');
  }
  function applyTheme() {
    const t = effectiveTheme();
    root.dataset.effective = t;
    const b = $('theme');
    if (b) b.setAttribute('aria-label', t === 'dark' ? 'Switch to light theme' : 'Switch to dark theme');
  }
  mqLight.addEventListener('change', () => { applyTheme(); drawCharts(); });
  function toggleTheme() {
    root.dataset.theme = effectiveTheme() === 'dark' ? 'light' : 'dark';
    store.set('pw.theme', root.dataset.theme);
    applyTheme();
    drawCharts();
  }
  async function applyStyle() {
    let st = (params.get('style') || '').replace(/\.js$/, '');
    if (!STYLES.includes(st)) {
      const stats = await getJSON('stats');
      st = String((stats && stats.config && stats.config.PW_STYLE) || 'clear').replace(/\.js$/, '');
      if (!STYLES.includes(st)) st = 'clear';
      if (stats) S.simulated = S.simulated || !!stats.simulated;
    }
    root.dataset.style = st;
    solarOnly(st);
  }
  // PW_STYLE=solar (solar-only sites): no Powerwall node, charge or Powerwall cards.
  function solarOnly(st) {
    if (st === 'solar') root.dataset.nobatt = '1';
    else delete root.dataset.nobatt;
  }

  // ---- power flow diagram ------------------------------------------------------------------
  const ICONS = {
    solar: '<circle cx="12" cy="12" r="4"/><path d="M12 2.5v2.5M12 19v2.5M2.5 12H5M19 12h2.5M5.3 5.3l1.8 1.8M16.9 16.9l1.8 1.8M5.3 18.7l1.8-1.8M16.9 7.1l1.8-1.8"/>',
    grid: '<path d="M12 2.5 7.2 21.5M12 2.5l4.8 19M5 7h14M6.2 11.5h11.6M8.6 16.5l7.6-5M15.4 16.5l-7.6-5M6 21.5h12"/>',
    home: '<path d="M3.5 11 12 3.8l8.5 7.2M5.8 9.3V20.5h12.4V9.3M10 20.5v-5.5h4v5.5"/>',
    batt: '<rect x="6.5" y="2.5" width="11" height="19" rx="2.5"/>',
  };
  // Two layouts: wide (viewBox 520 × 424) and, for narrow screens (phones), a tighter one with
  // larger nodes, so the circles and the moving dots stay big. Node centres, radius, box.
  const GEOM = {
    wide: { N: { solar: [260, 92], grid: [88, 205], home: [432, 205], batt: [260, 318] }, R: 34, box: [0, -14, 520, 424] },
    narrow: { N: { solar: [190, 104], grid: [60, 236], home: [320, 236], batt: [190, 368] }, R: 46, box: [0, -14, 380, 488] },
  };
  let N, R, PATHS, BOX, geomName = '';
  function setGeom(name) {
    const g = GEOM[name];
    geomName = name; N = g.N; R = g.R; BOX = g.box;
    const CX = N.solar[0], CY = N.grid[1], RC = R * 0.77;
    const P = { solar: [CX, N.solar[1] + R], batt: [CX, N.batt[1] - R], grid: [N.grid[0] + R, CY], home: [N.home[0] - R, CY] };
    PATHS = {
      sh: { d: `M${P.solar} V${CY - RC} Q${CX},${CY} ${CX + RC},${CY} H${P.home[0]}`, c: 'solar' },
      sb: { d: `M${P.solar} V${P.batt[1]}`, c: 'solar', b: 1 },
      sg: { d: `M${P.solar} V${CY - RC} Q${CX},${CY} ${CX - RC},${CY} H${P.grid[0]}`, c: 'solar' },
      gh: { d: `M${P.grid} H${P.home[0]}`, c: 'grid' },
      gb: { d: `M${P.grid} H${CX - RC} Q${CX},${CY} ${CX},${CY + RC} V${P.batt[1]}`, c: 'grid', b: 1 },
      bh: { d: `M${P.batt} V${CY + RC} Q${CX},${CY} ${CX + RC},${CY} H${P.home[0]}`, c: 'batt', b: 1 },
    };
  }
  const flowEls = {};
  const flowAnim = {}; // key → {v: px/s signed, off}
  const nodeEls = {};

  const narrowFor = (host) => { const w = host.clientWidth || innerWidth; return w < 470 && (!FLOW || host.clientHeight >= w * 1.05); };
  function buildFlow() {
    const host = $('flow');
    if (!host) return;
    // the compact view shows the diagram alone, whatever page it is on
    if (FLOW && host.parentNode !== doc.body) doc.body.insertBefore(host, doc.body.firstChild);
    setGeom(narrowFor(host) ? 'narrow' : 'wide');
    if (nodeEls.svg) nodeEls.svg.remove();
    const svg = el('svg', { viewBox: BOX.join(' '), role: 'img', 'aria-label': 'Power flow' });
    svg.style.aspectRatio = BOX[2] + ' / ' + BOX[3];
    svg.dataset.geom = geomName;
    const title = el('title', {}, svg);
    title.textContent = 'Power flow';
    const tracks = el('g', {}, svg);
    const flows = el('g', {}, svg);
    for (const k in PATHS) {
      el('path', { d: PATHS[k].d, class: 'fl-bg' + (PATHS[k].b ? ' b' : '') }, tracks);
      flowEls[k] = el('path', { d: PATHS[k].d, class: 'fl ' + PATHS[k].c + (PATHS[k].b ? ' b' : '') }, flows);
      flowAnim[k] = flowAnim[k] || { v: 0, off: 0 };
    }
    const labels = { solar: 'Solar', grid: 'Grid', home: 'Home', batt: 'Powerwall' };
    for (const k in N) {
      const [x, y] = N[k];
      const g = el('g', { class: 'node ' + k }, svg);
      el('circle', { class: 'ring', cx: x, cy: y, r: R }, g);
      const sc = R / 21.25;
      const ic = el('g', { class: 'ic', transform: `translate(${x - 12 * sc} ${y - 12 * sc}) scale(${sc})` }, g);
      ic.innerHTML = ICONS[k];
      let lvl = null, cross = null;
      if (k === 'batt') lvl = el('rect', { class: 'lvl', x: 8.5, y: 4.5, width: 7, height: 15, rx: 1 }, ic);
      if (k === 'grid') { cross = el('path', { d: 'M3 3 21 21', 'stroke-width': 2.2 }, ic); cross.style.display = 'none'; }
      // value and caption: above solar, below the others
      const v = el('text', { class: 'fv', x }, g);
      const cap = el('text', { class: 'fk', x }, g);
      cap.textContent = labels[k];
      const sub = k === 'grid' || k === 'home' ? el('text', { class: 'fs', x }, g) : null;
      nodeEls[k] = { g, v, cap, sub, lvl, cross };
    }
    host.appendChild(svg);
    nodeEls.svg = svg;
    layoutText(1);
    lastK = 1;
    if (S.sum) renderFlow(S.sum);
    if (flowObs) return;
    // small diagrams (phones, small Grafana panels) get larger text, so it stays readable; a
    // narrow host gets the narrow layout
    flowObs = new ResizeObserver(() => {
      if ((narrowFor(host) ? 'narrow' : 'wide') !== geomName) { buildFlow(); return; }
      const w = nodeEls.svg.getBoundingClientRect().width * (520 / BOX[2]);
      const k = w ? Math.round(clamp(1 + (480 - w) / 300, 1, 1.6) * 20) / 20 : 1;
      if (k !== lastK) { lastK = k; layoutText(k); }
    });
    flowObs.observe(host);
    if (!REDUCED) requestAnimationFrame(animate);
  }
  let flowObs = null, lastK = 1;

  // Text sizes and positions around the nodes, for a text scale k.
  function layoutText(k) {
    const F = 21 * k, C = 11.5 * k, Sf = 12 * k;
    for (const key in N) {
      const [, y] = N[key], n = nodeEls[key];
      const vy = key === 'solar' ? y - R - 10 : y + R + 6 + F * 0.78;
      const cy = key === 'solar' ? vy - F - 1 : vy + C + 6;
      n.v.setAttribute('y', vy.toFixed(1)); n.v.style.fontSize = F.toFixed(1) + 'px';
      n.cap.setAttribute('y', cy.toFixed(1)); n.cap.style.fontSize = C.toFixed(1) + 'px';
      if (n.sub) { n.sub.setAttribute('y', (cy + Sf + 5).toFixed(1)); n.sub.style.fontSize = Sf.toFixed(1) + 'px'; }
    }
  }

  // Who feeds whom: solar first to the home, then the battery, then the grid; the battery next
  // to the home, then the grid; the grid covers the rest of the home, then the battery.
  function pairFlows(s) {
    const solar = Math.max(0, s.solar || 0), load = Math.max(0, s.load || 0);
    const b = s.battery || 0, g = s.site || 0;
    const dis = Math.max(0, b), chg = Math.max(0, -b), imp = Math.max(0, g), exp = Math.max(0, -g);
    let needLoad = load, sRem = solar, chgRem = chg, expRem = exp;
    const sh = Math.min(sRem, needLoad); sRem -= sh; needLoad -= sh;
    const sb = Math.min(sRem, chgRem); sRem -= sb; chgRem -= sb;
    const sg = Math.min(sRem, expRem); expRem -= sg;
    const bh = Math.min(dis, needLoad); needLoad -= bh;
    const bg = Math.min(dis - bh, expRem);
    const gh = Math.min(imp, needLoad);
    const gb = Math.min(imp - gh, chgRem);
    return { sh, sb, sg, gh, gb: gb - bg, bh };
  }

  function renderFlow(s) {
    if (!nodeEls.svg) return;
    const f = pairFlows(s);
    for (const k in f) {
      const w = f[k], a = Math.abs(w), on = a >= IDLE_W;
      const e = flowEls[k];
      e.classList.toggle('on', on);
      // the grid→battery line carries battery→grid export backwards, in the battery's colour
      if (k === 'gb') e.setAttribute('class', 'fl b ' + (w < 0 ? 'batt' : 'grid') + (on ? ' on' : ''));
      e.style.strokeWidth = on ? ((3 + 2.3 * Math.log10(1 + a / 200)) * R / 34).toFixed(2) : '';
      flowAnim[k].v = on ? Math.sign(w) * (16 + 38 * Math.log10(1 + a / 100)) : 0;
    }
    const down = s.grid_status === 'DOWN';
    const vals = { solar: s.solar, grid: s.site, home: s.load, batt: s.battery };
    for (const k in vals) {
      const n = nodeEls[k], w = num(vals[k]);
      n.v.textContent = fmtW(w);
      n.g.classList.toggle('on', sgn(w) !== 0 && !(k === 'grid' && down));
    }
    const soe = num(s.soe_app);
    nodeEls.batt.cap.textContent = soe == null ? 'Powerwall' : `Powerwall · ${Math.round(soe)}%`;
    if (nodeEls.batt.lvl) {
      const h = 15 * clamp((soe || 0) / 100, 0, 1);
      nodeEls.batt.lvl.setAttribute('y', (19.5 - h).toFixed(2));
      nodeEls.batt.lvl.setAttribute('height', h.toFixed(2));
    }
    nodeEls.grid.g.classList.toggle('down', down);
    nodeEls.grid.cross.style.display = down ? '' : 'none';
    const site = num(s.site) || 0;
    nodeEls.grid.sub.textContent = down ? 'Outage' : s.grid_status === 'SYNCING' ? 'Syncing'
      : sgn(site) > 0 ? 'Importing' : sgn(site) < 0 ? 'Exporting' : '';
    nodeEls.home.sub.textContent = '';
    nodeEls.svg.setAttribute('aria-label',
      `Power flow: solar ${fmtW(s.solar)}, home ${fmtW(s.load)}, Powerwall ${fmtW(s.battery)} ` +
      `${['charging', 'idle', 'discharging'][sgn(s.battery) + 1]}` +
      (soe == null ? '' : ` at ${Math.round(soe)}%`) +
      `, grid ${down ? 'outage' : fmtW(s.site) + ['exporting', '', 'importing'][sgn(site) + 1].replace(/^./, ' $&')}`);
  }

  let lastFrame = 0;
  function animate(t) {
    const dt = lastFrame ? Math.min(0.1, (t - lastFrame) / 1000) : 0;
    lastFrame = t;
    for (const k in flowAnim) {
      const a = flowAnim[k];
      if (!a.v) continue;
      a.off = (a.off - a.v * dt) % 1600;
      flowEls[k].style.strokeDashoffset = a.off.toFixed(1);
    }
    requestAnimationFrame(animate);
  }

  // ---- dashboard rendering -----------------------------------------------------------------
  function setTile(key, w, sub) {
    const e = $('m-' + key);
    if (!e) return;
    e.dataset.w = w == null ? '' : String(w);
    setText('m-' + key, fmtW(w));
    setText('m-' + key + '-s', sub || '\u00a0');
  }

  const hasData = (s) => !!s && ['site', 'solar', 'battery', 'load'].some((k) => num(s[k]) != null);
  // When the selected gateway (or, for all sites, any gateway) last had data.
  function lastSeen() {
    const gws = S.sel === 'aggregate' || S.api !== 'v2' ? S.gateways : S.gateways.filter((g) => g.id === S.sel);
    const ts = gws.map((g) => num(g.last_success)).filter((x) => x != null);
    return ts.length ? Math.max(...ts) : null;
  }
  const seenText = () => { const t = lastSeen(); return t == null ? 'No data since the server started' : `Last seen ${hhmm(t)} (${fmtAge(Date.now() / 1000 - t)})`; };

  function render() {
    const s = S.sum;
    if (!s) return;
    renderFlow(s);
    if (FLOW) return;
    if (!hasData(s)) { renderOffline(s); return; }
    const site = num(s.site), solar = num(s.solar), batt = num(s.battery), load = num(s.load);
    const dir = (w, pos, neg) => (w == null ? '' : sgn(w) > 0 ? pos : sgn(w) < 0 ? neg : 'Idle');
    const down = s.grid_status === 'DOWN';
    setTile('solar', solar, solar == null ? '' : sgn(solar) > 0 ? 'Producing' : 'Idle');
    setTile('load', load, load == null ? '' : 'Consumption');
    setTile('battery', batt, dir(batt, 'Discharging', 'Charging'));
    setTile('site', site, down ? 'Off-grid' : dir(site, 'Importing', 'Exporting'));

    // battery
    const soe = num(s.soe_app), reserve = num(s.reserve);
    const full = num(s.full_pack_energy), rem = num(s.energy_remaining);
    const soeEl = $('soe');
    soeEl.dataset.v = soe == null ? '' : String(soe);
    setText('soe', soe == null ? '—' : String(Math.round(soe)));
    const bar = $('soe-bar');
    $('soe-fill').style.width = (soe == null ? 0 : clamp(soe, 0, 100)) + '%';
    bar.setAttribute('aria-valuenow', soe == null ? '0' : String(Math.round(soe)));
    bar.setAttribute('aria-valuetext', soe == null ? 'unknown' : Math.round(soe) + '%' + (reserve != null ? `, reserve ${Math.round(reserve)}%` : ''));
    bar.classList.toggle('low', soe != null && reserve != null && soe <= reserve + 5 && soe > reserve);
    bar.classList.toggle('crit', soe != null && reserve != null && soe <= reserve);
    const res = $('soe-res');
    res.hidden = reserve == null;
    if (reserve != null) {
      res.style.left = `calc(${clamp(reserve, 0, 100)}% - 1px)`;
      setText('soe-res-l', `Reserve ${Math.round(reserve)}%`);
    }
    let state = 'Idle', time = 'Standby';
    if (soe != null && soe >= 99.5 && sgn(batt) >= 0) { state = 'Full'; time = 'Fully charged'; }
    if (sgn(batt) > 0) {
      state = 'Discharging';
      let h = num(s.time_remaining_hours);
      if (h == null && rem != null) h = rem / batt;
      const d = fmtDur(h);
      time = d ? d + ' remaining' : 'Discharging';
    } else if (sgn(batt) < 0) {
      state = 'Charging';
      const d = full != null && rem != null ? fmtDur((full - rem) / -batt) : null;
      time = d ? 'Full in ' + d : 'Charging';
    }
    setText('b-state', state);
    $('b-state').className = 'chip' + (state === 'Charging' || state === 'Full' ? ' ok' : '');
    setText('b-time', time);
    setText('b-energy', full != null && rem != null ? `${(rem / 1000).toFixed(1)} of ${(full / 1000).toFixed(1)} kWh` : '');

    // grid
    const gs = $('g-status');
    const gst = s.grid_status;
    gs.textContent = gst === 'UP' ? 'Connected' : gst === 'DOWN' ? 'Outage' : gst === 'SYNCING' ? 'Syncing' : 'Unknown';
    gs.className = 'chip ' + (gst === 'UP' ? 'ok' : gst === 'DOWN' ? 'bad' : 'warn');
    setText('g-self', load != null && load > 0 && site != null ? Math.round(100 * clamp(1 - Math.max(0, site) / load, 0, 1)) + '%' : '—');
    const out = $('outage');
    out.hidden = !down;
    if (down) {
      const d = sgn(batt) > 0 ? fmtDur(num(s.time_remaining_hours) ?? (rem != null ? rem / batt : null)) : null;
      setText('outage', 'Grid outage — the home is running on Powerwall and solar' + (d ? ` (about ${d} of battery left)` : '') + '.');
    }
    setText('stamp', s.ts ? 'as of ' + new Date(s.ts * 1000).toLocaleTimeString() : '');
  }

  // No numbers at all: say so (Offline, when it was last seen) instead of "Idle" / "Standby".
  function renderOffline(s) {
    const what = s.state === 'connecting' ? 'Connecting' : 'Offline';
    for (const k of ['solar', 'load', 'battery', 'site']) setTile(k, null, what);
    $('soe').dataset.v = '';
    setText('soe', '—');
    $('soe-fill').style.width = '0%';
    $('soe-res').hidden = true;
    setText('b-state', what);
    $('b-state').className = 'chip bad';
    setText('b-time', seenText());
    setText('b-energy', '');
    const gs = $('g-status');
    gs.textContent = what;
    gs.className = 'chip bad';
    setText('g-self', '—');
    $('outage').hidden = true;
    setText('stamp', '');
  }

  function renderBanner() {
    const sim = S.simulated || !!(S.sum && S.sum.simulated) || S.gateways.some((g) => g.simulated);
    if (FLOW) {
      let b = $('simbadge');
      if (sim && !b) {
        b = doc.createElement('div');
        b.id = 'simbadge'; b.className = 'badge'; b.setAttribute('role', 'status');
        b.textContent = 'SIMULATED';
        doc.body.appendChild(b);
      }
      return;
    }
    $('demo').hidden = !sim;
  }

  const stateOf = (g) => g.state || 'connecting';
  const ageOf = (g) => {
    if (g.age != null) return g.age + (Date.now() - S.gwAt) / 1000;
    if (g.last_success != null) return Date.now() / 1000 - g.last_success;
    return null;
  };

  function renderGateways() {
    if (FLOW) return;
    const list = $('gwlist'), gws = S.gateways;
    setText('gw-count', gws.length ? `${gws.filter((g) => stateOf(g) === 'online').length} of ${gws.length} online` : '');
    const canSelect = S.api === 'v2';
    // rebuild only when the set of gateways changes; update text in place otherwise
    const sig = gws.map((g) => g.id).join('\n') + canSelect;
    if (list.dataset.sig !== sig) {
      list.dataset.sig = sig;
      list.textContent = '';
      for (const g of gws) {
        const li = doc.createElement('li');
        li.dataset.id = g.id;
        const inner = canSelect ? doc.createElement('button') : doc.createElement('div');
        if (canSelect) { inner.type = 'button'; inner.addEventListener('click', () => select(g.id)); }
        inner.innerHTML = '<span class="sdot"></span><span class="gw-t"><div class="gw-n"></div><div class="gw-m"></div></span><span class="gw-s"><div class="st"></div><div class="muted ag"></div></span>';
        li.appendChild(inner);
        list.appendChild(li);
      }
    }
    for (const li of list.children) {
      const g = gws.find((x) => x.id === li.dataset.id);
      if (!g) continue;
      const st = stateOf(g);
      li.classList.toggle('sel', S.sel === g.id);
      li.querySelector('.sdot').className = 'sdot s-' + st;
      li.querySelector('.gw-n').textContent = g.name || g.id;
      const meta = [g.site_name && g.site_name !== g.name ? g.site_name : null, g.host,
        g.firmware ? 'fw ' + g.firmware : null,
        g.battery_count ? `${g.pw3 ? 'Powerwall 3' : 'Powerwall'} ×${g.battery_count}` : null].filter(Boolean);
      li.querySelector('.gw-m').textContent = meta.join(' · ') || g.id;
      li.querySelector('.st').textContent = st;
      li.querySelector('.st').style.color = st === 'online' ? 'var(--ok)' : st === 'offline' ? 'var(--bad)' : 'var(--warn)';
      li.querySelector('.ag').textContent = 'updated ' + fmtAge(ageOf(g));
      const btn = li.querySelector('button');
      if (btn) btn.setAttribute('aria-label', `${g.name || g.id}: ${st}, updated ${fmtAge(ageOf(g))}`);
    }
    renderSelector();
  }

  function renderSelector() {
    const nav = $('gwsel');
    if (!nav) return;
    const show = S.api === 'v2' && S.gateways.length > 1;
    nav.hidden = !show;
    if (!show) return;
    const items = [{ id: 'aggregate', name: 'All sites' }].concat(S.gateways);
    const sig = items.map((g) => g.id + '\t' + g.name).join('\n');
    if (nav.dataset.sig !== sig) {
      nav.dataset.sig = sig;
      nav.textContent = '';
      for (const g of items) {
        const b = doc.createElement('button');
        b.type = 'button';
        b.dataset.id = g.id;
        b.innerHTML = (g.id === 'aggregate' ? '' : '<span class="sdot"></span>') + '<span></span>';
        b.lastChild.textContent = g.name || g.id;
        b.addEventListener('click', () => select(g.id));
        nav.appendChild(b);
      }
    }
    for (const b of nav.children) {
      b.setAttribute('aria-pressed', String(b.dataset.id === S.sel));
      const g = S.gateways.find((x) => x.id === b.dataset.id);
      if (g) b.firstChild.className = 'sdot s-' + stateOf(g);
    }
  }

  // summary states that deserve a word (gateway: online|stale|offline|…; aggregate: healthy|degraded|unhealthy)
  const STATE_TEXT = { stale: 'Data is stale', offline: 'Gateway offline', cooldown: 'Gateway busy, retrying', connecting: 'Connecting to the gateway',
    degraded: 'Some gateways are not reporting', unhealthy: 'No gateway is reporting' };
  // Subtitle parts without repeats: a part the title or another part already says is left out
  // ("Powerwall · Powerwall ×2" → "Powerwall ×2").
  function subParts(title, parts) {
    const p = parts.filter(Boolean), lc = (x) => x.toLowerCase();
    return p.filter((x, i) => lc(x) !== lc(title) && !p.some((y, j) => j !== i && lc(y).includes(lc(x)) && (lc(y) !== lc(x) || j < i))).join(' · ');
  }
  function renderHeader() {
    if (FLOW) return;
    let title = S.siteName || 'Powerwall', sub = '';
    if (S.api === 'v2') {
      if (S.sel === 'aggregate') {
        title = 'All sites';
        sub = `${S.gateways.length} gateway${S.gateways.length === 1 ? '' : 's'} combined`;
      } else {
        const g = S.gateways.find((x) => x.id === S.sel);
        if (g) {
          title = g.site_name || g.name || g.id;
          sub = subParts(title, [g.name, g.battery_count ? `${g.pw3 ? 'Powerwall 3' : 'Powerwall'} ×${g.battery_count}` : null, g.firmware ? 'firmware ' + g.firmware : null]);
        }
      }
    } else if (S.api === 'legacy') {
      const g = S.gateways[0];
      sub = g ? (g.name || g.id) : '';
    }
    const s = S.sum;
    const age = s ? (Date.now() - S.sumAt) / 1000 : null;
    const st = s && s.state;
    const warn = STATE_TEXT[st] || (st && st !== 'online' && st !== 'healthy' ? `Gateway ${st}` : null);
    if (warn && s && !hasData(s) && S.sel !== 'aggregate') sub = warn + ' · ' + seenText().replace(/^Last/, 'last').replace(/^No data/, 'no data') + (sub ? ' · ' + sub : '');
    else if (warn) sub = warn + (sub ? ' · ' + sub : '');
    else if (age != null && age > 15) sub = `No update for ${Math.round(age)} s` + (sub ? ' · ' + sub : '');
    setText('site', title);
    setText('sub', sub || (s ? 'Live' : 'Connecting…'));
    doc.title = title === 'Powerwall' ? 'Powerwall' : title + ' · Powerwall';
    $('main').classList.toggle('stale', !!warn || (age != null && age > 15));
  }

  function renderConn() {
    const pill = $('conn');
    if (!pill) return;
    const age = S.sum ? (Date.now() - S.sumAt) / 1000 : Infinity;
    let cls = '', text = 'Connecting';
    if (S.sum && !hasData(S.sum)) { cls = 'down'; text = S.sum.state === 'connecting' ? 'Connecting' : 'Offline'; }
    else if (S.transport === 'ws' && age < 10) { cls = 'live'; text = 'Live'; }
    else if (S.transport === 'poll' && age < 15) { cls = 'poll'; text = S.api === 'v2' ? 'Polling · reconnecting' : 'Polling'; }
    else if (S.sumAt) { cls = 'down'; text = 'Offline'; }
    pill.className = 'pill ' + cls;
    if (pill.lastChild.textContent !== text) pill.lastChild.textContent = text;
  }

  // ---- data sources ------------------------------------------------------------------------
  const GRID = { SystemGridConnected: 'UP', SystemTransitionToGrid: 'SYNCING', SystemTransitionToIsland: 'SYNCING', SystemWaitForUser: 'SYNCING' };
  function legacyGrid(gs) {
    if (!gs || typeof gs.grid_status !== 'string') return null;
    const v = gs.grid_status;
    return GRID[v] || (v.startsWith('SystemIslanded') ? 'DOWN' : null);
  }

  async function pollLegacy() {
    const [agg, soe, gs, js] = await Promise.all([
      getJSON('api/meters/aggregates'), getJSON('api/system_status/soe'),
      getJSON('api/system_status/grid_status'), getJSON('json'),
    ]);
    if (!agg || !agg.site) return agg === null ? 'nodata' : false;
    const p = (m) => (m && num(m.instant_power)) ?? null;
    const j = js || {};
    const g0 = S.gateways[0];
    return {
      type: 'summary', id: 'legacy', ts: Date.now() / 1000,
      site: p(agg.site), solar: p(agg.solar), battery: p(agg.battery), load: p(agg.load),
      soe: num(j.soe), soe_app: soe ? num(soe.percentage) : null, grid_status: legacyGrid(gs),
      reserve: num(j.reserve), time_remaining_hours: num(j.time_remaining_hours),
      full_pack_energy: num(j.full_pack_energy), energy_remaining: num(j.energy_remaining),
      state: g0 ? g0.state : 'online', simulated: S.simulated,
    };
  }

  async function pollV2(sel) {
    if (sel !== 'aggregate') {
      const g = await getJSON('api/gateways/' + encodeURIComponent(sel));
      return g && g.summary ? g.summary : false;
    }
    const [p, soe] = await Promise.all([getJSON('api/aggregate/power'), getJSON('api/aggregate/soe')]);
    if (!p) return false;
    const bad = (p.offline || []).length || (p.stale || []).length ? 'degraded' : 'healthy';
    const gridDown = S.gateways.some((g) => g.grid_status === 'DOWN');
    const s = soe || {};
    const batt = num(p.battery), rem = num(s.remaining_wh);
    return {
      type: 'summary', id: 'aggregate', ts: num(p.ts) || Date.now() / 1000,
      site: num(p.site), solar: num(p.solar), battery: batt, load: num(p.load),
      soe: num(s.percentage_raw), soe_app: num(s.percentage), grid_status: gridDown ? 'DOWN' : (S.sum && S.sum.grid_status) || null,
      reserve: null, time_remaining_hours: batt > 0 && rem != null ? rem / batt : null,
      full_pack_energy: num(s.full_wh), energy_remaining: rem,
      state: (p.contributors || []).length ? bad : 'unhealthy', simulated: S.gateways.some((g) => g.simulated),
    };
  }

  let gen = 0, ws = null, wsTries = 0, wsTimer = 0, pollTimer = 0, pollTok = null, polling = false;

  function onSummary(s, via) {
    if (!s || typeof s !== 'object') return;
    S.sum = s;
    S.sumAt = Date.now();
    S.transport = via;
    if (s.simulated) S.simulated = true;
    render();
    renderHeader();
    renderConn();
    renderBanner();
    setText('hv-transport', via === 'ws' ? 'WebSocket' : 'REST polling');
    record(s);
    if (!FLOW) ctlOnSummary(s);
    const c = charts['c-power'];
    if (Date.now() - lastDraw > 5000 || (c && !c.pts.length)) drawCharts();
  }

  // One polling chain at a time: each has a token, and stopping forgets it.
  function startPolling() {
    if (pollTok) return;
    const tok = pollTok = {}, my = gen;
    const run = async () => {
      if (pollTok !== tok) return;
      if (!polling) {
        polling = true;
        try {
          const sel = S.sel;
          const s = S.api === 'v2' ? await pollV2(sel) : await pollLegacy();
          if (pollTok === tok && my === gen && sel === S.sel && s && typeof s === 'object') onSummary(s, 'poll');
        } finally { polling = false; }
      }
      if (pollTok === tok) pollTimer = setTimeout(run, 2000);
    };
    pollTimer = setTimeout(run, 0);
  }
  function stopPolling() { clearTimeout(pollTimer); pollTimer = 0; pollTok = null; }

  function connect() {
    gen++;
    stopPolling();
    clearTimeout(wsTimer);
    if (ws) { const old = ws; ws = null; old.onclose = old.onmessage = old.onerror = null; try { old.close(); } catch (e) { /* closed */ } }
    wsTries = 0;
    if (S.api === 'v2' && 'WebSocket' in window) openSocket(gen);
    else startPolling();
  }

  function openSocket(my) {
    const path = S.sel === 'aggregate' ? 'ws/aggregate' : 'ws/gateway/' + encodeURIComponent(S.sel);
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + BASE + path;
    let sock;
    try { sock = new WebSocket(url); } catch (e) { startPolling(); return; }
    ws = sock;
    // no message within 5 s: poll meanwhile (the socket may still come alive)
    const slow = setTimeout(() => { if (my === gen && ws === sock && S.transport !== 'ws') startPolling(); }, 5000);
    sock.onmessage = (e) => {
      if (my !== gen) return;
      let m;
      try { m = JSON.parse(e.data); } catch (err) { return; }
      if (!m || m.type !== 'summary') return;
      wsTries = 0;
      stopPolling();
      onSummary(m, 'ws');
    };
    sock.onclose = () => {
      clearTimeout(slow);
      if (my !== gen || ws !== sock) return;
      ws = null;
      S.transport = 'poll';
      startPolling();
      // back-off 1, 2, 4 … 30 s, with jitter
      const delay = Math.min(30, 2 ** wsTries) * 1000 * (0.75 + Math.random() * 0.5);
      wsTries++;
      renderConn();
      wsTimer = setTimeout(() => { if (my === gen) openSocket(my); }, delay);
    };
  }

  async function refreshGateways() {
    if (S.api === 'v2') {
      const list = await getJSON('api/gateways');
      if (!Array.isArray(list)) return;
      S.gwAt = Date.now();
      S.gateways = list.map((g) => ({ ...g, age: num(g.age_seconds) }));
      if (S.gateways.some((g) => g.simulated)) S.simulated = true;
    } else {
      const st = await getJSON('stats');
      if (!st) return;
      S.gwAt = Date.now();
      S.simulated = !!st.simulated;
      S.siteName = st.site_name || '';
      S.gateways = (Array.isArray(st.gateways) ? st.gateways : []).map((g) => ({ ...g, age: null }));
    }
    renderGateways();
    renderHeader();
    renderBanner();
  }

  function select(id) {
    if (S.api !== 'v2') return;
    const valid = id === 'aggregate' || S.gateways.some((g) => g.id === id);
    if (!valid || id === S.sel) return;
    flushBucket(); // into the history of the gateway being left
    S.sel = id;
    if (!FLOW) {
      store.set(skey('sel'), id);
      history.replaceState(null, '', '#gw=' + encodeURIComponent(id));
    }
    S.sum = null; S.sumAt = 0; S.transport = 'connecting';
    clearDashboard();
    renderGateways();
    renderHeader();
    loadHistory();
    loadToday();
    loadDetail();
    connect();
    ctlSelect();
  }

  function clearDashboard() {
    if (FLOW) return;
    for (const k of ['solar', 'load', 'battery', 'site']) setTile(k, null, '');
    setText('soe', '—');
    setText('b-time', '—');
    setText('b-energy', '');
    setText('stamp', '');
    for (const id of ['units', 'strings']) $(id).tBodies[0].textContent = '';
    for (const id of ['alerts', 'health', 'u-count', 's-total', 's-note', 'u-note', 'a-count']) $(id).textContent = '';
  }

  // ---- today's kWh (/api/timeseries/today) ---------------------------------------------------
  const fmtKwh = (v) => (num(v) == null ? '—' : v.toFixed(1) + ' kWh');
  async function loadToday() {
    if (FLOW || !$('today')) return;
    const sel = S.sel;
    const t = await getJSON('api/timeseries/today' + (S.api === 'v2' && sel !== 'aggregate' ? '?gateway=' + encodeURIComponent(sel) : ''));
    if (sel !== S.sel) return;
    const d = t && (S.api === 'v2' && sel !== 'aggregate' ? t.gateways && t.gateways[sel] : t.total);
    setText('today', d ? `solar ${fmtKwh(d.solar_kwh)} · home ${fmtKwh(d.home_kwh)} · grid ${fmtKwh(d.grid_import_kwh)} in, ${fmtKwh(d.grid_export_kwh)} out` : '—');
  }

  // ---- history -----------------------------------------------------------------------------
  const skey = (k) => 'pw.' + BASE + '.' + k;
  const hkey = () => skey('hist.' + S.sel);
  const round1 = (x) => (x == null ? null : Math.round(x * 10) / 10);

  function loadLocal() {
    try {
      const v = JSON.parse(store.get(hkey()) || 'null');
      return v && v.v === 1 && Array.isArray(v.p) ? v.p.filter((p) => Array.isArray(p) && p.length === 6) : [];
    } catch (e) { return []; }
  }

  // Keeps a week: minute points for the last day, 10-minute averages before that.
  function compact(pts, now) {
    const out = [], day = now - 86400, week = now - 7 * 86400;
    let acc = null;
    const flush = () => {
      if (!acc) return;
      out.push([acc.t, ...acc.s.map((v, i) => (acc.n[i] ? (i === 4 ? round1(v / acc.n[i]) : Math.round(v / acc.n[i])) : null))]);
      acc = null;
    };
    for (const p of pts) {
      if (p[0] < week) continue;
      if (p[0] >= day) { flush(); out.push(p); continue; }
      const t = Math.floor(p[0] / 600) * 600;
      if (!acc || acc.t !== t) { flush(); acc = { t, s: [0, 0, 0, 0, 0], n: [0, 0, 0, 0, 0] }; }
      for (let i = 0; i < 5; i++) if (p[i + 1] != null) { acc.s[i] += p[i + 1]; acc.n[i]++; }
    }
    flush();
    return out;
  }

  function saveLocal() {
    S.hist = compact(S.hist, Date.now() / 1000);
    let data = S.hist;
    // on a full localStorage keep what fits, newest first
    while (!store.set(hkey(), JSON.stringify({ v: 1, p: data })) && data.length > 60) data = data.slice(Math.floor(data.length / 4));
  }

  function mergeServer(points) {
    const soeOf = (p) => (p.soe_app != null ? num(p.soe_app) : appScale(num(p.soe)));
    const srv = points.filter((p) => p && num(p.ts) != null).map((p) => [Math.round(p.ts), num(p.site), num(p.solar), num(p.battery), num(p.load), round1(soeOf(p))]);
    if (!srv.length) return;
    const a = srv[0][0], b = srv[srv.length - 1][0];
    S.hist = S.hist.filter((p) => p[0] < a || p[0] > b).concat(srv).sort((x, y) => x[0] - y[0]);
    saveLocal();
  }

  async function loadHistory() {
    const sel = S.sel;
    S.hist = loadLocal();
    S.bucket = null;
    drawCharts();
    if (S.api !== 'v2') {
      setText('h-note', 'History is recorded by this browser while the page is open.');
      return;
    }
    const h = await getJSON(sel === 'aggregate' ? 'api/aggregate/history' : 'api/gateways/' + encodeURIComponent(sel) + '/history');
    if (sel !== S.sel) return;
    if (h && Array.isArray(h.points)) mergeServer(h.points);
    setText('h-note', h ? 'The last 24 hours come from the server; longer history is kept in this browser.' : 'History is recorded by this browser while the page is open.');
    drawCharts();
  }

  function record(s) {
    if (FLOW || s.ts == null) return;
    const t = Math.floor(s.ts / 60) * 60;
    if (S.bucket && S.bucket.t !== t) flushBucket();
    if (!S.bucket) S.bucket = { t, s: [0, 0, 0, 0, 0], n: [0, 0, 0, 0, 0] };
    const v = [num(s.site), num(s.solar), num(s.battery), num(s.load), num(s.soe_app)];
    for (let i = 0; i < 5; i++) if (v[i] != null) { S.bucket.s[i] += v[i]; S.bucket.n[i]++; }
  }
  function bucketPoint(b) {
    return [b.t, ...b.s.map((v, i) => (b.n[i] ? (i === 4 ? round1(v / b.n[i]) : Math.round(v / b.n[i])) : null))];
  }
  function flushBucket() {
    const b = S.bucket;
    S.bucket = null;
    if (!b || !b.n.some(Boolean)) return;
    const last = S.hist[S.hist.length - 1];
    if (last && last[0] >= b.t) return; // the server's history already has this minute
    S.hist.push(bucketPoint(b));
    saveLocal();
    drawCharts();
  }

  // ---- charts (hand-written SVG) -------------------------------------------------------------
  const SERIES = [{ i: 2, c: 'solar', n: 'Solar' }, { i: 4, c: 'home', n: 'Home' }, { i: 3, c: 'batt', n: 'Powerwall' }, { i: 1, c: 'grid', n: 'Grid' }];
  const charts = {};

  function niceStep(span, n) {
    const raw = span / n, p = 10 ** Math.floor(Math.log10(raw)), m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
  }

  function chartPoints() {
    const now = Date.now() / 1000;
    let from = now - S.range;
    const pts = S.hist.filter((p) => p[0] >= from);
    if (S.bucket && S.bucket.n.some(Boolean) && (!pts.length || pts[pts.length - 1][0] < S.bucket.t)) pts.push(bucketPoint(S.bucket));
    // less data than the range: the axis starts at the first point (at least 2 min shown)
    if (pts.length) from = Math.max(from, Math.min(pts[0][0], now - 120));
    return { pts, from, to: now };
  }

  // One path for a series; a gap in the data breaks the line, a lone point shows as a dot.
  function pathOf(pts, idx, X, Y, dots) {
    let d = '', prev = null, n = 0;
    const end = () => { if (n === 1 && dots) d += 'h0.5'; n = 0; };
    for (const p of pts) {
      const v = p[idx];
      if (v == null) { end(); prev = null; continue; }
      const gap = prev && p[0] - prev[0] > (p[0] > Date.now() / 1000 - 86400 ? 330 : 1900);
      if (!prev || gap) end();
      d += (prev && !gap ? 'L' : 'M') + X(p[0]).toFixed(1) + ',' + Y(v).toFixed(1);
      n++;
      prev = p;
    }
    end();
    return d;
  }

  function xTicks(from, to, w) {
    const steps = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800];
    const want = Math.max(2, Math.floor(w / 90));
    const step = steps.find((s) => (to - from) / s <= want) || 172800;
    const tz = new Date().getTimezoneOffset() * 60;
    const out = [];
    for (let t = Math.ceil((from - tz) / step) * step + tz; t <= to; t += step) out.push(t);
    return { ticks: out, step };
  }
  const tickLabel = (t, step) => (step >= 86400 ? new Date(t * 1000).toLocaleDateString([], { weekday: 'short', day: 'numeric' }) : hhmm(t));

  function drawChart(id, kind) {
    const host = $(id);
    if (!host) return;
    const W = host.clientWidth, H = host.clientHeight;
    if (!W || !H) return;
    const { pts, from, to } = chartPoints();
    const L = 44, Rm = 6, T = 8, B = 20;
    const X = (t) => L + ((t - from) / (to - from)) * (W - L - Rm);
    let lo, hi, ticks = [], fmt;
    if (kind === 'power') {
      lo = 0; hi = 1000;
      for (const p of pts) for (const s of SERIES) { const v = p[s.i]; if (v != null) { if (v < lo) lo = v; if (v > hi) hi = v; } }
      const step = niceStep(hi - lo, H < 150 ? 3 : 4);
      lo = Math.floor(lo / step) * step; hi = Math.ceil(hi / step) * step;
      for (let v = lo; v <= hi + step / 2; v += step) ticks.push(v);
      fmt = (v) => (v === 0 ? '0' : Math.abs(v) >= 1000 ? +(v / 1000).toFixed(1) + ' kW' : v + ' W');
    } else {
      lo = 0; hi = 100; ticks = [0, 50, 100]; fmt = (v) => v + '%';
    }
    const Y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
    let s = `<svg viewBox="0 0 ${W} ${H}" aria-hidden="true">`;
    for (const v of ticks) s += `<line class="${v === 0 && kind === 'power' ? 'ax0' : 'ax'}" x1="${L}" x2="${W - Rm}" y1="${Y(v).toFixed(1)}" y2="${Y(v).toFixed(1)}"/><text class="axl" x="${L - 6}" y="${(Y(v) + 3.5).toFixed(1)}" text-anchor="end">${fmt(v)}</text>`;
    const xt = xTicks(from, to, W - L);
    for (const t of xt.ticks) s += `<text class="axl" x="${X(t).toFixed(1)}" y="${H - 4}" text-anchor="middle">${tickLabel(t, xt.step)}</text>`;
    if (!pts.length) {
      s += `<text class="empty" x="${(L + W) / 2}" y="${H / 2}">Collecting data…</text>`;
    } else if (kind === 'power') {
      for (const se of SERIES) s += `<path class="ln ${se.c}" d="${pathOf(pts, se.i, X, Y, true)}"/>`;
    } else {
      const d = pathOf(pts, 5, X, Y);
      // the area under the charge line, closed per segment
      const area = d.split('M').filter(Boolean).map((seg) => {
        const xs = seg.split('L');
        const x0 = xs[0].split(',')[0], x1 = xs[xs.length - 1].split(',')[0];
        return `M${x0},${Y(0).toFixed(1)}L${seg}L${x1},${Y(0).toFixed(1)}Z`;
      }).join('');
      s += `<path class="ar" d="${area}"/>`;
      const r = S.sum && num(S.sum.reserve);
      if (r != null) s += `<line class="resl" x1="${L}" x2="${W - Rm}" y1="${Y(r).toFixed(1)}" y2="${Y(r).toFixed(1)}"/>`;
    }
    s += `<line class="cur" y1="${T}" y2="${H - B}" x1="-9" x2="-9" visibility="hidden"/></svg>`;
    host.innerHTML = s;
    host.dataset.from = String(Math.round(from));
    charts[id] = { pts, X, L, W, Rm, from, to, kind };
  }

  let lastDraw = 0;
  function drawCharts() {
    if (FLOW) return;
    lastDraw = Date.now();
    drawChart('c-power', 'power');
    drawChart('c-soe', 'soe');
  }

  function hover(e) {
    const id = e.currentTarget.id, c = charts[id], tip = $('tip');
    if (!c || !c.pts.length) return;
    const r = e.currentTarget.getBoundingClientRect();
    const t = c.from + ((e.clientX - r.left - c.L) / (c.W - c.L - c.Rm)) * (c.to - c.from);
    let lo = 0, hi = c.pts.length - 1;
    while (lo < hi) { const m = (lo + hi) >> 1; if (c.pts[m][0] < t) lo = m + 1; else hi = m; }
    if (lo > 0 && Math.abs(c.pts[lo - 1][0] - t) < Math.abs(c.pts[lo][0] - t)) lo--;
    const p = c.pts[lo];
    const line = e.currentTarget.querySelector('.cur');
    if (Math.abs(c.X(p[0]) - (e.clientX - r.left)) > 24) { unhover(e); return; } // no data near the pointer
    const x = c.X(p[0]).toFixed(1);
    line.setAttribute('x1', x); line.setAttribute('x2', x); line.setAttribute('visibility', 'visible');
    const how = (i, v) => (!sgn(v) ? '' : i === 3 ? (v > 0 ? ' discharging' : ' charging') : i === 1 ? (v > 0 ? ' import' : ' export') : '');
    const rows = (c.kind === 'power' ? SERIES.map((s) => [s.n, p[s.i] == null ? '—' : fmtW(p[s.i]) + how(s.i, p[s.i]), s.c])
      : [['Charge', p[5] == null ? '—' : Math.round(p[5]) + '%', 'batt']]);
    const when = S.range > 86400 ? new Date(p[0] * 1000).toLocaleString([], { weekday: 'short', hour: '2-digit', minute: '2-digit' }) : hhmm(p[0]);
    tip.innerHTML = `<b>${when}</b>` + rows.map(([n, v, cl]) => `<div><span style="color:var(--${cl})">${n}</span><span>${v}</span></div>`).join('');
    tip.hidden = false;
    const tw = tip.offsetWidth, th = tip.offsetHeight;
    let left = e.clientX + 14;
    if (left + tw > innerWidth - 8) left = e.clientX - tw - 14;
    tip.style.left = Math.max(8, left) + 'px';
    tip.style.top = clamp(e.clientY - th - 10, 8, innerHeight - th - 8) + 'px';
  }
  function unhover(e) {
    $('tip').hidden = true;
    const line = e.currentTarget.querySelector('.cur');
    if (line) line.setAttribute('visibility', 'hidden');
  }

  // ---- control card --------------------------------------------------------------------------
  // Shown only when GET control/status says control is enabled. Writes go to the selected
  // gateway in the JSON style ({"value": …} with the bearer token, asked once per browser tab and
  // kept in sessionStorage), after an in-page confirmation; the shown values come from the polls.
  const CTL_FIELDS = {
    reserve: { id: 'c-reserve', label: 'backup reserve', show: (v) => v + '%' },
    mode: { id: 'c-mode', label: 'mode' },
    grid_charging: { id: 'c-gc', label: 'grid charging' },
    grid_export: { id: 'c-ge', label: 'grid export' },
  };
  const C = { status: null, cur: {}, dirty: new Set(), busy: false, pending: null, readAt: 0, gen: 0 };
  const tokKey = () => 'pw.' + BASE + '.control-token';
  const session = {
    get() { try { return sessionStorage.getItem(tokKey()) || ''; } catch (e) { return ''; } },
    set(v) { try { if (v) sessionStorage.setItem(tokKey(), v); else sessionStorage.removeItem(tokKey()); } catch (e) { /* private mode */ } },
  };
  const ctlGw = () => (S.api === 'v2' ? S.sel : C.status && C.status.default_gateway);
  const ctlInfo = () => {
    const gws = (C.status && C.status.gateways) || [];
    return gws.find((g) => g.id === ctlGw()) || null;
  };
  const ctlPath = (id, action) => (S.api === 'v2' ? 'api/gateways/' + encodeURIComponent(id) + '/control/' : 'control/') + action;
  function fieldText(a, v) {
    const f = CTL_FIELDS[a];
    if (f.show) return f.show(v);
    const o = [...$(f.id).options].find((x) => x.value === String(v));
    return o ? o.textContent : String(v);
  }
  function ctlMsg(text, kind) {
    const m = $('c-msg');
    m.textContent = text;
    m.className = 'c-msg small' + (kind ? ' ' + kind : '');
  }
  function ctlRender() {
    const card = $('ctl');
    if (!card) return;
    const enabled = !!(C.status && C.status.enabled);
    card.hidden = FLOW || !enabled;
    if (card.hidden) return;
    const info = ctlInfo(), actions = (info && info.actions) || [];
    const note = $('c-note');
    const form = $('c-form');
    if (!info) {
      note.textContent = 'Choose one site above to change its settings.';
    } else if (!actions.length) {
      note.textContent = 'This site cannot be controlled: no cloud credentials (run pypowerwall-server setup) and no LAN control.';
    }
    note.hidden = !!(info && actions.length);
    form.hidden = !note.hidden;
    setText('c-path', info && info.path ? 'via ' + (info.path === 'lan' ? 'LAN' : 'Tesla cloud') : 'read-only');
    for (const row of form.querySelectorAll('.c-row[data-a]')) row.hidden = !actions.includes(row.dataset.a);
    $('c-tokrow').hidden = !!session.get();
    for (const a in CTL_FIELDS) {
      const input = $(CTL_FIELDS[a].id);
      if (!C.dirty.has(a) && C.cur[a] != null) input.value = String(C.cur[a]);
      input.disabled = C.busy;
    }
    const r = $('c-reserve');
    setText('c-reserve-v', C.cur.reserve == null && !C.dirty.has('reserve') ? '—' : r.value + '%');
    $('c-apply').disabled = C.busy || !C.dirty.size;
    $('c-reset').disabled = C.busy || !C.dirty.size;
  }
  async function ctlRead() {
    const id = ctlGw(), info = ctlInfo(), my = ++C.gen;
    if (!id || !info || !info.actions.length) return;
    C.readAt = Date.now();
    const got = {};
    for (const a of Object.keys(CTL_FIELDS).filter((x) => info.actions.includes(x))) {
      const j = await getJSON(ctlPath(id, a));
      if (j && a in j) got[a] = a === 'reserve' ? Math.round(num(j.reserve) ?? 0) : String(j[a]);
    }
    if (my !== C.gen || id !== ctlGw()) return;
    C.cur = got;
    ctlSettle();
    ctlRender();
  }
  // A write is confirmed when the polled value shows it.
  function ctlSettle() {
    const p = C.pending;
    if (!p) return;
    const done = Object.keys(p.want).every((a) => String(C.cur[a]) === String(p.want[a]));
    if (done) {
      C.pending = null;
      ctlMsg('Done — the site now reports ' + Object.keys(p.want).map((a) => CTL_FIELDS[a].label + ' ' + fieldText(a, p.want[a])).join(', ') + '.', 'ok');
    } else if (Date.now() - p.at > 120000) {
      C.pending = null;
      ctlMsg('Accepted, but the site does not report the new value yet; check again later.', 'bad');
    }
  }
  function ctlOnSummary(s) {
    if (!C.status || !C.status.enabled) return;
    const r = num(s.reserve);
    if (r != null && (s.id == null || s.id === ctlGw())) C.cur.reserve = Math.round(r);
    // the other values are read now and then, and on every poll while a write settles
    if (C.pending || Date.now() - C.readAt > 30000) ctlRead();
    else { ctlSettle(); ctlRender(); }
  }
  function ctlSelect() {
    if (FLOW || !$('ctl')) return;
    C.dirty.clear(); C.cur = {}; C.pending = null; C.gen++;
    $('c-confirm').hidden = true;
    ctlMsg('');
    ctlRender();
    ctlRead();
  }
  function ctlChanges() {
    const out = {};
    for (const a of C.dirty) {
      const v = $(CTL_FIELDS[a].id).value;
      out[a] = a === 'reserve' ? +v : a === 'grid_charging' ? v === 'true' : v;
    }
    return out;
  }
  async function ctlWrite(changes) {
    const id = ctlGw(), g = S.gateways.find((x) => x.id === id);
    const token = session.get() || $('c-token').value.trim();
    C.busy = true; ctlRender();
    ctlMsg('Sending…');
    try {
      for (const a of Object.keys(changes)) {
        let r, body = {};
        try {
          r = await fetch(BASE + ctlPath(id, a), {
            method: 'POST', cache: 'no-store',
            headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + token },
            body: JSON.stringify(a === 'islanding' ? changes[a] : { value: changes[a] }),
          });
          body = await r.json().catch(() => ({}));
        } catch (e) {
          ctlMsg('The server did not answer: ' + e.message, 'bad');
          return;
        }
        if (r.status === 401) {
          session.set('');
          $('c-token').value = '';
          ctlMsg('The control token was refused. Enter it again.', 'bad');
          return;
        }
        session.set(token);
        if (!r.ok) {
          const why = body && body.error ? body.error : 'HTTP ' + r.status;
          ctlMsg(`Could not set ${CTL_FIELDS[a].label}: ${why}` + (r.status === 409 ? ' (try again in a moment)' : ''), 'bad');
          return;
        }
        C.dirty.delete(a);
      }
      C.pending = { want: changes, at: Date.now() };
      ctlMsg(`Sent to ${(g && g.name) || id || 'the site'}; waiting for the next update to show it…`);
    } finally {
      C.busy = false;
      $('c-token').value = '';
      ctlRender();
    }
  }
  async function ctlInit() {
    const st = await getJSON('control/status');
    C.status = st && typeof st.enabled === 'boolean' ? st : null;
    ctlRender();
    if (!C.status || !C.status.enabled) return;
    for (const a in CTL_FIELDS) {
      $(CTL_FIELDS[a].id).addEventListener('input', () => {
        if (String($(CTL_FIELDS[a].id).value) === String(C.cur[a])) C.dirty.delete(a); else C.dirty.add(a);
        $('c-confirm').hidden = true;
        ctlRender();
      });
    }
    $('c-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const ch = ctlChanges();
      if (!Object.keys(ch).length || C.busy) return;
      if (!session.get() && !$('c-token').value.trim()) { ctlMsg('Enter the control token first.', 'bad'); $('c-token').focus(); return; }
      const id = ctlGw(), g = S.gateways.find((x) => x.id === id);
      setText('c-confirm-t', `Change ${(g && g.name) || id || 'this site'}: ` + Object.keys(ch).map((a) => `${CTL_FIELDS[a].label} → ${fieldText(a, ch[a])}`).join(', ') + '?');
      $('c-confirm').hidden = false;
      $('c-yes').focus();
    });
    $('c-yes').addEventListener('click', () => { $('c-confirm').hidden = true; ctlWrite(ctlChanges()); });
    $('c-no').addEventListener('click', () => { $('c-confirm').hidden = true; ctlMsg('Nothing was changed.'); });
    $('c-reset').addEventListener('click', () => { C.dirty.clear(); $('c-confirm').hidden = true; ctlMsg(''); ctlRender(); });
    ctlRead();
  }

  // ---- detail cards: Powerwalls, solar strings, alerts, system health ------------------------
  // Read every 10 s from the per-gateway views (/api/gateways/{id}/battery|temps|fans|vitals|
  // strings|alerts, /api/gateways/{id}, /health); for "All sites", every gateway's, grouped.
  const esc = (t) => String(t).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
  const fix = (v, d) => (num(v) == null ? '—' : v.toFixed(d));
  const addN = (a, b) => (num(a) == null && num(b) == null ? null : (num(a) || 0) + (num(b) || 0));
  const isEmpty = (o) => !o || typeof o !== 'object' || !Object.keys(o).length;
  const gwOf = (id) => S.gateways.find((x) => x.id === id) || {};
  const gwName = (id) => gwOf(id).name || id;
  const LEGACY_VIEW = { alerts: 'alerts', strings: 'strings', battery: 'pw/battery_blocks', temps: 'temps', fans: 'fans', vitals: 'vitals' };
  const viewPath = (id, v) => (S.api === 'v2' ? 'api/gateways/' + encodeURIComponent(id) + '/' + v : LEGACY_VIEW[v]);
  const HIDE = new Set((params.get('hide') || '').toLowerCase().split(',').map((x) => x.trim()).filter(Boolean));
  const cardOn = (c) => { const e = doc.querySelector(`[data-card="${c}"]`); return !!e && !e.dataset.off && getComputedStyle(e).display !== 'none'; };
  // Severity of common Tesla alert names; any other name is "info".
  const SEV = {};
  for (const [lvl, names] of [
    ['critical', 'SystemShutdown DeviceShutdownRequested BatteryFault BatteryBreakerOpen BatteryUnexpectedPowerOff PodCommissionFailed'],
    ['warning', 'FWUpdateFailed BatteryComms BackfeedLimited RealPowerAvailableLimited RealPowerConfigLimited ExcessiveVoltageDrop ScheduledIslandContactorOpen GridCodesWriteFailed PINV_a067_overvoltageNeutralChassis PINV_a006_vfCheckUnderFrequency PINV_a007_vfCheckOverFrequency PINV_a008_vfCheckRocof PINV_a010_can_gtwMIA SYNC_a036_SiteMasterLostComms'],
  ]) for (const n of names.split(' ')) SEV[n] = lvl;
  const sevOf = (a) => SEV[a] || 'info';
  const alertLabel = (a) => {
    const t = a.replace(/^[A-Z]+_[a-z]\d+_/, '').replace(/_/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
    return t.charAt(0).toUpperCase() + t.slice(1);
  };
  const D = { gen: 0, seen: new Map(), known: new Set() };

  async function loadDetail() {
    if (FLOW || !S.sel) return;
    const my = ++D.gen, sel = S.sel;
    const ids = S.api !== 'v2' ? ['legacy'] : sel === 'aggregate' ? S.gateways.map((g) => g.id) : [sel];
    const on = { alerts: cardOn('alerts'), strings: cardOn('strings'), units: cardOn('powerwalls'), health: cardOn('health') };
    const per = await Promise.all(ids.map(async (id) => {
      const get = (v, yes) => (yes ? getJSON(viewPath(id, v)) : undefined);
      const [alerts, strings, battery, temps, fans, gw] = await Promise.all([get('alerts', on.alerts), get('strings', on.strings),
        get('battery', on.units), get('temps', on.units), get('fans', on.units),
        S.api === 'v2' && (on.units || on.health) ? getJSON('api/gateways/' + encodeURIComponent(id)) : undefined]);
      // PW3s report temperatures and fans only in vitals
      const vitals = on.units && !isEmpty(battery) && isEmpty(temps) && isEmpty(fans) ? await get('vitals', true) : undefined;
      return { id, alerts, strings, battery, temps, fans, vitals, gw: gw || gwOf(id) };
    }));
    const health = on.health ? await getJSON('health') : undefined;
    if (my !== D.gen || sel !== S.sel) return;
    const multi = ids.length > 1;
    if (on.alerts) renderAlerts(per, multi);
    if (on.strings) renderStrings(per, multi);
    if (on.units) renderUnits(per, multi);
    if (on.health) renderHealth(per, health, multi);
  }

  function renderAlerts(per, multi) {
    const now = Date.now(), items = [];
    for (const p of per) {
      if (!Array.isArray(p.alerts)) continue;
      // alerts present at the first read have no known start; later ones are "since" when seen
      const first = !D.known.has(p.id);
      D.known.add(p.id);
      p.alerts.forEach((a, i) => {
        const k = p.id + '\t' + a;
        if (!D.seen.has(k)) D.seen.set(k, first ? 0 : now);
        items.push({ id: p.id, a: String(a), i, at: D.seen.get(k) });
      });
    }
    items.sort((x, y) => y.at - x.at || y.i - x.i);
    const crit = items.filter((x) => sevOf(x.a) !== 'info').length;
    $('alerts').innerHTML = items.map((x) => `<li class="al ${sevOf(x.a)}" title="${esc(x.a)}" data-gw="${esc(x.id)}"><span class="sev">${sevOf(x.a)}</span><span class="an">${esc(alertLabel(x.a))}</span>` +
      `<span class="muted small">${[multi ? esc(gwName(x.id)) : '', x.at ? 'since ' + hhmm(x.at / 1000) : ''].filter(Boolean).join(' · ')}</span></li>`).join('') ||
      '<li class="none muted">No active alerts</li>';
    setText('a-count', items.length ? `${items.length} active` + (crit ? ` · ${crit} to check` : '') : '');
  }

  // A, B, … F with a numeric suffix per extra inverter: by suffix, then letter.
  const strKey = (k) => { const m = k.match(/^([A-Z]+)(\d*)$/); return m ? [+(m[2] || 0), m[1]] : [1e9, k]; };
  const strCmp = (a, b) => { const x = strKey(a), y = strKey(b); return x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0); };
  function renderStrings(per, multi) {
    const rows = [], off = [];
    let total = 0;
    for (const p of per) {
      const st = p.strings && typeof p.strings === 'object' && !Array.isArray(p.strings) ? p.strings : null;
      if (!st) continue;
      const keys = Object.keys(st).sort(strCmp);
      if (multi && keys.length) rows.push(`<tr class="grp"><th colspan="4">${esc(gwName(p.id))}</th></tr>`);
      const shown = (k) => !!st[k] && (st[k].Connected === true || Math.abs(num(st[k].Power) || 0) >= 1);
      const row = (name, v, a, w, cls) => `<tr class="${cls}" data-s="${esc(name)}" data-gw="${esc(p.id)}"><th>${esc(name)}</th><td>${fix(v, 1)}</td><td>${fix(a, 2)}</td><td>${num(w) == null ? '—' : Math.round(w)}</td></tr>`;
      const one = (k, cls) => {
        if (!shown(k)) { off.push((multi ? gwName(p.id) + ' ' : '') + k); return; }
        total += num(st[k].Power) || 0;
        rows.push(row(k, num(st[k].Voltage), num(st[k].Current), num(st[k].Power), cls));
      };
      const done = new Set();
      for (const k of keys) {
        if (done.has(k)) continue;
        done.add(k);
        // Powerwall 3: an MPPT takes two strings (A+B, C+D, E+F): its voltage, summed current and power
        const m = gwOf(p.id).pw3 && k.match(/^([ACE])(\d*)$/);
        const mate = m && String.fromCharCode(m[1].charCodeAt(0) + 1) + m[2];
        if (m && st[mate]) {
          done.add(mate);
          if (shown(k) || shown(mate)) rows.push(row(m[1] + mate, num(st[k].Voltage), addN(st[k].Current, st[mate].Current), addN(st[k].Power, st[mate].Power), 'pair'));
          one(k, 'sub'); one(mate, 'sub');
        } else one(k, '');
      }
    }
    $('strings').tBodies[0].innerHTML = rows.join('') || '<tr><td colspan="4" class="muted">No solar strings reported</td></tr>';
    setText('s-total', rows.length ? fmtW(total) + ' total' : '');
    setText('s-note', off.length ? 'Not connected: ' + off.join(', ') : '');
  }

  function renderUnits(per, multi) {
    const rows = [], fansLeft = [];
    let n = 0;
    for (const p of per) {
      const bb = p.battery && typeof p.battery === 'object' && !Array.isArray(p.battery) ? p.battery : null;
      if (!bb) continue;
      const blocks = Object.entries(bb);
      if (multi && blocks.length) rows.push(`<tr class="grp"><th colspan="6">${esc(gwName(p.id))}</th></tr>`);
      const bySn = (o, sn) => { if (!o || typeof o !== 'object') return undefined; const k = Object.keys(o).find((x) => x.endsWith('--' + sn)); return k ? o[k] : undefined; };
      const vit = (pre, sn) => (p.vitals && typeof p.vitals === 'object' ? p.vitals[Object.keys(p.vitals).find((k) => k.startsWith(pre + '--') && k.endsWith('--' + sn))] : undefined) || {};
      // p_out is in W from a gateway's own API and in kW from TEDAPI: pick what adds up to the gateway's battery power
      const tot = blocks.reduce((a, [, b]) => a + (num(b.p_out) || 0), 0);
      const bw = p.gw && p.gw.summary ? num(p.gw.summary.battery) : null;
      const k = bw != null && Math.abs(tot * 1000 - bw) < Math.abs(tot - bw) ? 1000 : 1;
      const used = new Set();
      let pw = 0, exp = 0;
      for (const [sn, b] of blocks) {
        n++;
        const isExp = /expansion/i.test(b.Type || '');
        const label = isExp ? 'Expansion ' + ++exp : 'Powerwall ' + ++pw;
        const rem = num(b.nominal_energy_remaining), full = num(b.nominal_full_pack_energy);
        const pct = rem != null && full ? appScale((100 * rem) / full) : null;
        const w = num(b.p_out) == null ? null : b.p_out * k;
        const inv = vit('TEPINV', sn), thc = vit('TETHC', sn);
        const temp = num(b.temperature) ?? num(bySn(p.temps, sn)) ?? num(inv.PCH_AmbientTemp) ?? num(thc.THC_AmbientTemp);
        const fan = bySn(p.fans, sn);
        if (fan) used.add(Object.keys(p.fans).find((x) => x.endsWith('--' + sn)));
        const rpm = fan ? [num(fan.PVAC_Fan_Speed_Actual_RPM)] : [num(inv.PCH_FanSpeed_A), num(inv.PCH_FanSpeed_B)];
        const fw = b.version || inv.firmwareVersion || thc.firmwareVersion || p.gw.firmware || null;
        rows.push(`<tr data-sn="${esc(sn)}" data-gw="${esc(p.id)}"><th><span class="un">${label}</span><span class="muted sn">${esc(sn)}</span></th>` +
          `<td class="u-c">${pct == null ? '—' : Math.round(pct) + '%'}<span class="muted sn">${rem == null || !full ? '' : `${(rem / 1000).toFixed(1)} / ${(full / 1000).toFixed(1)} kWh`}</span></td>` +
          `<td class="u-p">${w == null ? '—' : fmtW(w) + ['<span class="muted sn">charging</span>', '', '<span class="muted sn">discharging</span>'][sgn(w) + 1]}</td>` +
          `<td class="u-t">${temp == null ? '—' : temp.toFixed(1) + ' °C'}</td><td class="u-f">${rpm.some((x) => x != null) ? rpm.filter((x) => x != null).join(' / ') + ' rpm' : '—'}</td>` +
          `<td class="u-v">${fw ? esc(String(fw).split(' ')[0]) : '—'}</td></tr>`);
      }
      for (const [key, f] of Object.entries(p.fans && typeof p.fans === 'object' ? p.fans : {})) {
        if (!used.has(key) && f && num(f.PVAC_Fan_Speed_Actual_RPM) != null) fansLeft.push(`${key.split('--').pop()} ${f.PVAC_Fan_Speed_Actual_RPM} rpm`);
      }
    }
    $('units').tBodies[0].innerHTML = rows.join('') || '<tr><td colspan="6" class="muted">No Powerwall reported</td></tr>';
    setText('u-count', n ? `${n} unit${n === 1 ? '' : 's'}` : '');
    setText('u-note', fansLeft.length ? 'Inverter fans: ' + fansLeft.join(', ') : '');
  }

  function fmtUp(s) {
    if (!isFinite(s) || s < 0) return '—';
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    return d ? `${d} d ${h} h` : h ? `${h} h ${String(m).padStart(2, '0')} min` : m ? `${m} min` : Math.round(s) + ' s';
  }
  function renderHealth(per, health, multi) {
    const now = Date.now() / 1000, kv = [];
    const row = (k, label, v, cls) => kv.push(`<dt>${esc(label)}</dt><dd data-k="${k}"${cls ? ` class="${cls}"` : ''}>${esc(v)}</dd>`);
    const states = per.map((p) => p.gw.state || (S.api === 'v2' ? 'connecting' : 'online'));
    const ok = states.every((x) => x === 'online'), anyOk = states.includes('online');
    const chip = $('h-state');
    chip.textContent = multi ? `${states.filter((x) => x === 'online').length} of ${states.length} online` : states[0] || '—';
    chip.className = 'chip ' + (ok ? 'ok' : anyOk ? 'warn' : 'bad');
    for (const p of per) {
      const g = p.gw, h = g.health || {};
      if (multi) { kv.push(`<dt class="grp" data-gw="${esc(p.id)}">${esc(g.name || p.id)}</dt><dd></dd>`); }
      if (!multi) row('state', 'State', g.state || '—');
      row('mode', multi ? '· connection' : 'Connection', [g.mode, g.host].filter(Boolean).join(' · ') || '—');
      row('firmware', multi ? '· firmware' : 'Firmware', g.firmware || '—');
      const ls = num(h.last_success ?? g.last_success);
      row('last_success', multi ? '· last poll' : 'Last good poll', ls == null ? 'never' : `${hhmm(ls)} (${fmtAge(now - ls)})`);
      row('failures', multi ? '· failures in a row' : 'Failures in a row', String(h.consecutive_failures ?? '—'), h.consecutive_failures ? 'bad' : '');
      row('error', multi ? '· last error' : 'Last error', h.last_error || 'none', h.last_error ? 'bad' : '');
    }
    row('transport', 'Live updates', S.transport === 'ws' ? 'WebSocket' : S.transport === 'poll' ? 'REST polling' : 'connecting');
    kv[kv.length - 1] = kv[kv.length - 1].replace('<dd ', '<dd id="hv-transport" ');
    if (health && health.startup_time && health.current_time) {
      row('uptime', 'Server uptime', fmtUp((Date.parse(health.current_time) - Date.parse(health.startup_time)) / 1000));
    }
    if (health && health.pypowerwall) row('server', 'Server', health.pypowerwall);
    $('health').innerHTML = kv.join('');
  }

  // ---- start -------------------------------------------------------------------------------
  async function init() {
    applyTheme();
    buildFlow();
    if (FLOW) await applyStyle();
    else {
      // kiosk (?kiosk=1) is read-only; &hide=a,b hides the named cards
      if (root.dataset.kiosk) HIDE.add('control');
      for (const e of doc.querySelectorAll('[data-card]')) if (HIDE.has(e.dataset.card)) e.dataset.off = '1';
      getJSON('stats').then((st) => {
        solarOnly(String((st && st.config && st.config.PW_STYLE) || '').replace(/\.js$/, ''));
        if (st && st.simulated) { S.simulated = true; renderBanner(); }
        drawCharts();
      });
      $('theme').addEventListener('click', toggleTheme);
      const saved = +store.get(skey('range'));
      if ([3600, 21600, 86400, 604800].includes(saved)) S.range = saved;
      for (const b of $('ranges').children) {
        b.setAttribute('aria-pressed', String(+b.dataset.r === S.range));
        b.addEventListener('click', () => {
          S.range = +b.dataset.r;
          store.set(skey('range'), String(S.range));
          for (const x of $('ranges').children) x.setAttribute('aria-pressed', String(x === b));
          drawCharts();
        });
      }
      for (const id of ['c-power', 'c-soe']) {
        const c = $(id);
        c.addEventListener('pointermove', hover);
        c.addEventListener('pointerleave', unhover);
      }
      let rz = 0;
      new ResizeObserver(() => { cancelAnimationFrame(rz); rz = requestAnimationFrame(drawCharts); }).observe($('c-power'));
      addEventListener('pagehide', flushBucket);
    }

    const list = await getJSON('api/gateways');
    S.api = Array.isArray(list) ? 'v2' : 'legacy';
    await refreshGateways();
    if (S.api === 'v2') {
      const ids = S.gateways.map((g) => g.id);
      const want = FLOW ? params.get('gw') : decodeURIComponent((location.hash.match(/gw=([^&]+)/) || [])[1] || '') || store.get(skey('sel'));
      // the gateway the legacy routes serve: flagged "default" when the server says so, else the first
      const def = (S.gateways.find((g) => g.default === true) || S.gateways[0] || {}).id;
      S.sel = want === 'aggregate' || ids.includes(want) ? want : (ids.length > 1 && !FLOW ? 'aggregate' : def || 'aggregate');
    } else {
      S.sel = 'legacy';
    }
    renderGateways();
    renderHeader();
    if (!FLOW) {
      addEventListener('hashchange', () => {
        const m = location.hash.match(/gw=([^&]+)/);
        if (m) select(decodeURIComponent(m[1]));
      });
      loadHistory();
      loadToday();
      loadDetail();
      setInterval(loadToday, 60000);
      setInterval(loadDetail, 10000);
      setInterval(() => { if (S.api === 'v2') loadHistory(); }, 600000);
      setInterval(() => { if (S.bucket && S.bucket.t < Math.floor(Date.now() / 60000) * 60 - 60) flushBucket(); drawCharts(); }, 15000);
    }
    connect();
    if (!FLOW) ctlInit();
    setInterval(refreshGateways, S.api === 'v2' ? 5000 : 10000);
    setInterval(() => { renderConn(); renderHeader(); renderGateways(); }, 1000);
  }

  init();
})();
