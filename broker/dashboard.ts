/**
 * The live dashboard served at `/`: one HTML page, no framework. It loads the
 * browser build of the SDK (/hopbus.js), connects over the WebSocket at /bus like any
 * client, and subscribes to the broker's `$SYS.stats` and `$SYS.latency`
 * publications (one each per monitor interval); every chart is drawn from those
 * messages, so the page shows exactly what a trading engine subscribing to them sees.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>hopbus dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  :root { --bg:#0f1419; --panel:#171d24; --line:#2a323c; --fg:#d8dee9; --dim:#8a94a3; --a:#4fc3f7; --b:#ffb74d; --c:#81c784; --d:#e57373; }
  * { box-sizing: border-box; }
  body { margin:0; font:13px/1.4 system-ui, sans-serif; background:var(--bg); color:var(--fg); }
  header { display:flex; gap:24px; align-items:baseline; padding:12px 18px; border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; }
  header .dim { color:var(--dim); }
  #status { margin-left:auto; font-weight:600; }
  #status.ok { color:var(--c); } #status.bad { color:var(--d); }
  main { display:grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 460px), 1fr)); gap:12px; padding:12px 18px; }
  .cards { grid-column: 1 / -1; display:grid; grid-template-columns: repeat(auto-fit, minmax(130px, 1fr)); gap:12px; }
  .card, section { background:var(--panel); border:1px solid var(--line); border-radius:6px; padding:10px 12px; min-width:0; }
  section { overflow-x:auto; }
  .card .v { font-size:22px; font-weight:600; font-variant-numeric: tabular-nums; }
  .card .k { color:var(--dim); font-size:12px; }
  h2 { font-size:14px; margin:0 0 8px; color:var(--dim); font-weight:600; }
  canvas { width:100%; height:200px; display:block; }
  table { width:100%; border-collapse:collapse; font-variant-numeric: tabular-nums; }
  th, td { text-align:right; padding:3px 6px; border-bottom:1px solid var(--line); white-space:nowrap; }
  td:first-child { max-width:28ch; overflow:hidden; text-overflow:ellipsis; }
  th:first-child, td:first-child { text-align:left; }
  th { color:var(--dim); font-weight:500; }
  .legend span { margin-right:12px; } .legend i { display:inline-block; width:10px; height:3px; margin-right:4px; vertical-align:middle; }
  .empty { color:var(--dim); font-style:italic; }
</style>
</head>
<body>
<header><h1>hopbus</h1><span id="server" class="dim"></span><span id="uptime" class="dim"></span><span id="status" class="bad">connecting…</span></header>
<main>
  <div class="cards">
    <div class="card"><div class="k">messages in / s</div><div class="v" id="c-in">–</div></div>
    <div class="card"><div class="k">messages out / s</div><div class="v" id="c-out">–</div></div>
    <div class="card"><div class="k">bytes in / s</div><div class="v" id="c-bin">–</div></div>
    <div class="card"><div class="k">busiest 1 ms (msgs)</div><div class="v" id="c-p1">–</div></div>
    <div class="card"><div class="k">busiest 5 ms (msgs)</div><div class="v" id="c-p5">–</div></div>
    <div class="card"><div class="k">connections</div><div class="v" id="c-conn">–</div></div>
    <div class="card"><div class="k">total messages in</div><div class="v" id="c-tin">–</div></div>
    <div class="card"><div class="k">dropped / slow consumers</div><div class="v" id="c-drop">–</div></div>
  </div>
  <section><h2>Message rates (msgs/s)</h2><div class="legend"><span><i style="background:var(--a)"></i>in</span><span><i style="background:var(--b)"></i>out</span></div><canvas id="rates"></canvas></section>
  <section><h2>Microbursts (msgs in the busiest window of each interval)</h2><div class="legend"><span><i style="background:var(--d)"></i>busiest 1 ms</span><span><i style="background:var(--c)"></i>busiest 5 ms</span></div><canvas id="bursts"></canvas></section>
  <section><h2>Latency percentiles (µs, log scale)</h2><div class="legend"><span><i style="background:var(--a)"></i>end-to-end p50</span><span><i style="background:var(--b)"></i>end-to-end p99</span><span><i style="background:var(--c)"></i>pub→broker p50</span><span><i style="background:var(--d)"></i>pub→broker p99</span></div><canvas id="lat"></canvas></section>
  <section><h2>Latency by hop, last interval (µs)</h2><table id="hops"><thead><tr><th>hop</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr></thead><tbody></tbody></table></section>
  <section><h2>Busiest subjects (the broker's own $SYS subjects left out)</h2><table id="subjects"><thead><tr><th>subject</th><th>msgs/s</th><th>bytes/s</th></tr></thead><tbody></tbody></table></section>
  <section><h2>Slow consumers and drops</h2><table id="consumers"><thead><tr><th>connection</th><th>transport</th><th>pending</th><th>held</th><th>dropped</th><th>conflated</th></tr></thead><tbody></tbody></table></section>
</main>
<script src="/hopbus.js"></script>
<script>
(function () {
  var HOPS = [['pubToBroker', 'publisher → broker'], ['brokerToClient', 'broker → client'], ['endToEnd', 'end to end'], ['handler', 'handler (application)']];
  var N = 120, rates = [], bursts = [], lat = [], intervalMs = 1000;
  var $ = function (id) { return document.getElementById(id); };
  // One rule for every number on the page: three significant digits, with k/M/G from 1,000 on;
  // whole numbers below 1,000 stay whole.
  function fmt(n) {
    if (n == null || !isFinite(n)) return '–';
    var a = Math.abs(n), units = [[1e9, ' G'], [1e6, ' M'], [1e3, ' k']];
    for (var i = 0; i < units.length; i++) if (a >= units[i][0]) return Number((n / units[i][0]).toPrecision(3)) + units[i][1];
    return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(3)));
  }
  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) { return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]; }); }
  function rows(id, list, cells, empty) {
    var tb = $(id).tBodies[0];
    tb.innerHTML = list.length ? list.map(function (x) { return '<tr>' + cells(x).map(function (c) { return '<td>' + esc(c) + '</td>'; }).join('') + '</tr>'; }).join('') : '<tr><td class="empty" colspan="7">' + empty + '</td></tr>';
  }
  // log: a logarithmic y axis (latency: a start-up spike must not flatten the steady state).
  function chart(id, series, colors, log) {
    var cv = $(id), r = window.devicePixelRatio || 1, w = cv.clientWidth, h = cv.clientHeight;
    cv.width = w * r; cv.height = h * r;
    var g = cv.getContext('2d'); g.scale(r, r); g.clearRect(0, 0, w, h);
    var max = 1, min = Infinity; series.forEach(function (s) { s.forEach(function (v) { if (v > max) max = v; if (v > 0 && v < min) min = v; }); });
    var L = 52, B = 16, pw = w - L - 6, ph = h - B - 6;
    var lo = log ? Math.floor(Math.log10(Math.min(min, max))) : 0, hi = log ? Math.max(lo + 1, Math.ceil(Math.log10(max))) : 0;
    var frac = function (v) { return log ? (v > 0 ? Math.max(0, (Math.log10(v) - lo) / (hi - lo)) : 0) : v / max; };
    g.strokeStyle = '#2a323c'; g.fillStyle = '#8a94a3'; g.font = '11px system-ui'; g.lineWidth = 1;
    var ticks = log ? hi - lo : 4;
    for (var i = 0; i <= ticks; i++) { var y = 6 + ph - ph * i / ticks; g.beginPath(); g.moveTo(L, y); g.lineTo(L + pw, y); g.stroke(); g.fillText(fmt(log ? Math.pow(10, lo + i) : max * i / 4), 2, y + 4); }
    g.fillText('last ' + Math.round(N * intervalMs / 1000) + ' s', L, h - 2);
    series.forEach(function (s, k) {
      g.strokeStyle = colors[k]; g.lineWidth = 1.6; g.beginPath();
      s.forEach(function (v, j) { var x = L + pw * (j + N - s.length) / (N - 1), y = 6 + ph - ph * frac(v); if (j) g.lineTo(x, y); else g.moveTo(x, y); });
      g.stroke();
    });
  }
  var css = getComputedStyle(document.documentElement), col = function (v) { return css.getPropertyValue(v).trim(); };
  function onStats(s) {
    if (s.rates.intervalMs > 0) intervalMs = s.rates.intervalMs;
    $('server').textContent = s.serverName + ' · ' + s.serverId;
    $('uptime').textContent = 'up ' + s.uptimeSec + ' s';
    $('c-in').textContent = fmt(s.rates.msgsInPerSec);
    $('c-out').textContent = fmt(s.rates.msgsOutPerSec);
    $('c-bin').textContent = fmt(s.rates.bytesInPerSec);
    $('c-p1').textContent = fmt(s.bursts.peak1msMsgs);
    $('c-p5').textContent = fmt(s.bursts.peak5msMsgs);
    $('c-conn').textContent = s.connections;
    $('c-tin').textContent = fmt(s.totals.msgsIn);
    $('c-drop').textContent = fmt(s.totals.droppedOldest + s.totals.droppedNewest + s.totals.conflated) + ' / ' + s.totals.slowConsumers;
    rates.push([s.rates.msgsInPerSec, s.rates.msgsOutPerSec]); if (rates.length > N) rates.shift();
    bursts.push([s.bursts.peak1msMsgs, s.bursts.peak5msMsgs]); if (bursts.length > N) bursts.shift();
    chart('rates', [0, 1].map(function (k) { return rates.map(function (x) { return x[k]; }); }), [col('--a'), col('--b')]);
    chart('bursts', [0, 1].map(function (k) { return bursts.map(function (x) { return x[k]; }); }), [col('--d'), col('--c')]);
    var apps = s.topSubjects.filter(function (t) { return t.subject.indexOf('$SYS.') !== 0; });
    rows('subjects', apps, function (t) { return [t.subject, fmt(t.msgsPerSec), fmt(t.bytesPerSec)]; }, 'no messages in the last interval');
    rows('consumers', s.consumers, function (c) { return [c.name || ('#' + c.cid), c.transport, fmt(c.pendingBytes), fmt(c.heldMsgs), fmt(c.dropped), fmt(c.conflated)]; }, 'no consumer is behind');
    document.body.dataset.updates = String((+document.body.dataset.updates || 0) + 1);
  }
  function onLatency(l) {
    var i = l.interval;
    lat.push([i.endToEnd.p50, i.endToEnd.p99, i.pubToBroker.p50, i.pubToBroker.p99]); if (lat.length > N) lat.shift();
    chart('lat', [0, 1, 2, 3].map(function (k) { return lat.map(function (x) { return x[k]; }); }), [col('--a'), col('--b'), col('--c'), col('--d')], true);
    rows('hops', HOPS.map(function (h) { return [h[1], i[h[0]]]; }), function (x) { var s = x[1]; return [x[0], fmt(s.count), fmt(s.p50), fmt(s.p90), fmt(s.p99), fmt(s.p999), fmt(s.max)]; }, '');
  }
  async function main() {
    var url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/bus';
    // A broker whose monitoring asks for a token: open the page as /?token=..., once per tab;
    // the token is kept in sessionStorage and taken out of the address bar (and so out of history).
    var params = new URLSearchParams(location.search);
    var token = params.get('token');
    if (token) {
      sessionStorage.setItem('hopbus.token', token);
      params.delete('token');
      var rest = params.toString();
      history.replaceState(null, '', location.pathname + (rest ? '?' + rest : '') + location.hash);
    }
    token = token || sessionStorage.getItem('hopbus.token') || '';
    var bus = await hopbus.connect(url, token ? { name: 'dashboard', token: token } : { name: 'dashboard' });
    $('status').textContent = 'live'; $('status').className = 'ok';
    bus.on('disconnect', function () { $('status').textContent = 'reconnecting…'; $('status').className = 'bad'; });
    bus.on('reconnect', function () { $('status').textContent = 'live'; $('status').className = 'ok'; });
    bus.subscribe('$SYS.stats', function (m) { onStats(m.value); });
    bus.subscribe('$SYS.latency', function (m) { onLatency(m.value); });
    window.hopbusDashboard = { bus: bus };
  }
  main().catch(function (e) { $('status').textContent = 'error: ' + e.message; $('status').className = 'bad'; console.error(e); });
})();
</script>
</body>
</html>
`;
