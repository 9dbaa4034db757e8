// Development mock of pypowerwall-server's HTTP API for working on www/ without the Rust server.
// Serves www/ from disk plus the legacy routes and the multi-gateway API (REST + WebSocket) with
// two simulated gateways. Not used by `cargo test` (tests/ui.rs runs the real server).
//
//   node tests/ui/mock-server.mjs [--port 8676] [--prefix /pp/] [--legacy] [--outage]
//
// --legacy answers only the proxy's legacy routes (the new ones say "Not Found", as the proxy
// does), --prefix serves everything under a reverse-proxy path prefix, --outage islands "home".
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const PORT = Number(opt('--port', 8676));
const PREFIX = opt('--prefix', '/');
const LEGACY = args.includes('--legacy');
const OUTAGE = args.includes('--outage');
const WWW = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../www');
const TYPES = { html: 'text/html; charset=utf-8', js: 'application/javascript', css: 'text/css', svg: 'image/svg+xml', png: 'image/png', json: 'application/json' };

// ---- simulation -------------------------------------------------------------------------------
const t0 = Date.now() / 1000;
const gws = [
  { id: 'home', name: 'Home', host: '192.0.2.10', pw3: true, battery_count: 2, full: 27000, soe: 62, reserve: 20 },
  { id: 'cabin', name: 'Cabin', host: '192.0.2.11', pw3: false, battery_count: 1, full: 13500, soe: 35, reserve: 30 },
];
function step(g, now) {
  const k = g.id === 'home' ? 1 : 0.45;
  const phase = (now - t0) / 60;
  g.solar = Math.max(0, Math.round(k * (5200 + 900 * Math.sin(phase) + 150 * Math.sin(now / 7))));
  g.load = Math.round(k * (1400 + 600 * Math.sin(phase * 1.7 + 1) + 80 * Math.sin(now / 3)));
  const island = OUTAGE && g.id === 'home';
  let batt = g.load - g.solar + (island ? 0 : -800 * k); // negative: charging
  if (g.soe >= 99.5 && batt < 0) batt = 0;
  g.battery = Math.round(Math.max(-5000 * k, Math.min(5000 * k, batt)));
  g.site = island ? 0 : g.load - g.solar - g.battery;
  g.soe = Math.min(100, Math.max(0, g.soe - (g.battery / g.full) * 100 / 3600));
  g.grid = island ? 'DOWN' : 'UP';
  g.last = now;
}
const appScale = (raw) => Math.max(0, Math.min(100, ((raw / 100 - 0.05) / 0.95) * 100));
const r1 = (x) => Math.round(x * 10) / 10;
function summary(g, now) {
  const rem = (g.soe / 100) * g.full;
  return {
    type: 'summary', id: g.id, ts: now, site: g.site, solar: g.solar, battery: g.battery, load: g.load,
    soe: g.soe, soe_app: appScale(g.soe), grid_status: g.grid, reserve: g.reserve,
    time_remaining_hours: g.battery > 0 ? rem / g.battery : null,
    full_pack_energy: g.full, energy_remaining: rem, state: 'online', simulated: true,
  };
}
function aggSummary(now) {
  const s = { type: 'summary', id: 'aggregate', ts: now, site: 0, solar: 0, battery: 0, load: 0, full_pack_energy: 0, energy_remaining: 0, state: 'online', simulated: true };
  for (const g of gws) {
    const x = summary(g, now);
    for (const k of ['site', 'solar', 'battery', 'load', 'full_pack_energy', 'energy_remaining']) s[k] += x[k];
  }
  s.soe = (s.energy_remaining / s.full_pack_energy) * 100;
  s.soe_app = appScale(s.soe);
  s.grid_status = gws.some((g) => g.grid === 'DOWN') ? 'DOWN' : 'UP';
  s.reserve = null;
  s.time_remaining_hours = s.battery > 0 ? s.energy_remaining / s.battery : null;
  return s;
}
const history = { home: [], cabin: [], aggregate: [] };
{
  // 24 h of invented minute points, ending now
  const now = Math.floor(Date.now() / 60000) * 60;
  for (let i = 1440; i > 0; i--) {
    const ts = now - i * 60;
    const h = ((ts / 3600) % 24 + 24) % 24;
    const sun = Math.max(0, Math.sin(((h - 6) / 13) * Math.PI));
    for (const [id, k] of [['home', 1], ['cabin', 0.45]]) {
      const solar = Math.round(k * 7000 * sun * (0.85 + 0.15 * Math.sin(ts / 900)));
      const load = Math.round(k * (900 + 700 * Math.max(0, Math.sin(((h - 16) / 6) * Math.PI)) + 200 * Math.sin(ts / 1300)));
      const battery = Math.round(Math.max(-5000 * k, Math.min(5000 * k, load - solar)));
      history[id].push({ ts, site: load - solar - battery, solar, battery, load, soe: 40 + 45 * Math.sin(((h - 9) / 24) * 2 * Math.PI) });
    }
    const a = history.home.at(-1), b = history.cabin.at(-1);
    history.aggregate.push({ ts, site: a.site + b.site, solar: a.solar + b.solar, battery: a.battery + b.battery, load: a.load + b.load, soe: (a.soe * 2 + b.soe) / 3 });
  }
}
let lastTick = 0;
function tick() {
  const now = Date.now() / 1000;
  if (now - lastTick < 0.9) return;
  lastTick = now;
  for (const g of gws) step(g, now);
}
tick();

// ---- routes -----------------------------------------------------------------------------------
const json = (res, v) => { res.writeHead(200, { 'Content-Type': 'application/json', 'Access-Control-Allow-Origin': '*' }); res.end(JSON.stringify(v)); };
const notFound = (res) => { res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end('Not Found'); };
function gwInfo(g, now) {
  return { id: g.id, name: g.name, host: g.host, mode: 'tedapi', state: 'online', firmware: '25.10.1', site_name: g.name, pw3: g.pw3, battery_count: g.battery_count, simulated: true, last_success: g.last, age_seconds: now - g.last };
}
function meter(p) { return { last_communication_time: '2024-01-24 12:00:00 +0000', instant_power: p, instant_reactive_power: 0, instant_apparent_power: 0, frequency: 0, energy_exported: 0, energy_imported: 0, instant_average_voltage: 240, instant_average_current: p / 240 }; }
function route(p, res) {
  tick();
  const now = Date.now() / 1000;
  const d = gws[0];
  const s = summary(d, now);
  switch (p) {
    case '/aggregates': case '/api/meters/aggregates':
      return json(res, { site: meter(d.site), battery: meter(d.battery), load: meter(d.load), solar: meter(d.solar) });
    case '/soe': return json(res, { percentage: d.soe });
    case '/api/system_status/soe': return json(res, { percentage: s.soe_app });
    case '/api/system_status/grid_status':
      return json(res, { grid_status: d.grid === 'UP' ? 'SystemGridConnected' : 'SystemIslandedActive', grid_services_active: false });
    case '/pod':
      return json(res, { time_remaining_hours: s.time_remaining_hours ?? 0, backup_reserve_percent: d.reserve, nominal_full_pack_energy: d.full, nominal_energy_remaining: s.energy_remaining });
    case '/json':
      return json(res, { grid: d.site, home: d.load, solar: d.solar, battery: d.battery, soe: d.soe, grid_status: d.grid === 'UP' ? 1 : 0, reserve: d.reserve, time_remaining_hours: s.time_remaining_hours ?? 0, full_pack_energy: d.full, energy_remaining: s.energy_remaining, strings: {} });
    case '/stats':
      return json(res, { pypowerwall: 'mock', simulated: true, site_name: d.name, gateways: gws.map((g) => ({ id: g.id, name: g.name, state: 'online', last_success: g.last })), config: { PW_STYLE: 'clear.js' } });
  }
  if (LEGACY) return null;
  if (p === '/api/gateways') return json(res, gws.map((g) => gwInfo(g, now)));
  if (p === '/api/aggregate/power') {
    const a = aggSummary(now);
    return json(res, { site: a.site, solar: a.solar, battery: a.battery, load: a.load, contributors: gws.map((g) => g.id), stale: [], offline: [], ts: now });
  }
  if (p === '/api/aggregate/soe') {
    const a = aggSummary(now);
    return json(res, { percentage: a.soe_app, percentage_raw: a.soe, remaining_wh: a.energy_remaining, full_wh: a.full_pack_energy, contributors: gws.map((g) => g.id) });
  }
  if (p === '/api/aggregate/history') return json(res, { interval_seconds: 60, points: history.aggregate });
  let m = p.match(/^\/api\/gateways\/([^/]+)(\/history)?$/);
  if (m) {
    const g = gws.find((x) => x.id === m[1]);
    if (!g) { res.writeHead(404, { 'Content-Type': 'application/json' }); res.end('{"error": "unknown gateway"}'); return true; }
    if (m[2]) return json(res, { interval_seconds: 60, points: history[g.id] });
    return json(res, { ...gwInfo(g, now), summary: summary(g, now) });
  }
  return null;
}

const server = http.createServer((req, res) => {
  let url = new URL(req.url, 'http://x');
  let p = url.pathname;
  if (PREFIX !== '/' && p.startsWith(PREFIX)) p = '/' + p.slice(PREFIX.length);
  if (route(p, res) !== null) return;
  let file = p === '/' ? '/index.html' : p;
  if (!path.extname(file) && fs.existsSync(path.join(WWW, file + '.html'))) file += '.html';
  const full = path.join(WWW, file);
  if (!full.startsWith(WWW) || !fs.existsSync(full) || !fs.statSync(full).isFile()) return notFound(res);
  res.writeHead(200, { 'Content-Type': TYPES[path.extname(full).slice(1)] || 'application/octet-stream', 'Cache-Control': 'no-cache' });
  res.end(fs.readFileSync(full));
});

// ---- WebSocket (RFC 6455, text frames out, close/ping in) -------------------------------------
function frame(text) {
  const payload = Buffer.from(text);
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x81, n]) : n < 65536 ? Buffer.from([0x81, 126, n >> 8, n & 255]) : null;
  return Buffer.concat([head, payload]);
}
server.on('upgrade', (req, sock) => {
  let p = new URL(req.url, 'http://x').pathname;
  if (PREFIX !== '/' && p.startsWith(PREFIX)) p = '/' + p.slice(PREFIX.length);
  const m = p.match(/^\/ws\/(?:gateway\/([^/]+)|(aggregate))$/);
  const g = m && m[1] ? gws.find((x) => x.id === m[1]) : null;
  if (LEGACY || !m || (m[1] && !g)) { sock.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'); return; }
  const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  const send = () => { tick(); const now = Date.now() / 1000; sock.write(frame(JSON.stringify(g ? summary(g, now) : aggSummary(now)))); };
  send();
  const timer = setInterval(send, 1000);
  sock.on('data', (b) => { if ((b[0] & 0x0f) === 8) { clearInterval(timer); sock.end(Buffer.from([0x88, 0])); } });
  sock.on('close', () => clearInterval(timer));
  sock.on('error', () => clearInterval(timer));
});

server.listen(PORT, '127.0.0.1', () => console.log(`mock server on http://127.0.0.1:${PORT}${PREFIX}${LEGACY ? ' (legacy only)' : ''}`));
