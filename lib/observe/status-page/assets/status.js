// The status page: fetches /api/status every few seconds and renders it. Every value goes in
// with textContent: device ids come from device tokens and must never become markup.
'use strict';

var REFRESH_MS = 2000;

function bytes(n) {
  var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  var i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(n) : n.toFixed(1)) + ' ' + units[i];
}

function ago(iso, now) {
  var s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  return Math.round(s / 3600) + ' h ago';
}

function cell(row, text, cls) {
  var td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function fill(tableId, emptyId, items, render) {
  var body = document.querySelector('#' + tableId + ' tbody');
  body.replaceChildren();
  items.forEach(function (item) {
    var row = document.createElement('tr');
    render(row, item);
    body.appendChild(row);
  });
  document.getElementById(emptyId).hidden = items.length > 0;
}

function render(s) {
  var now = Date.parse(s.generated_at);
  document.getElementById('summary').textContent =
    'version ' + s.version + ' · up ' + Math.round(s.uptime_seconds / 60) + ' min · ' +
    s.devices.length + ' device(s) · ' + s.cache.entries.length + ' cached artifact(s)';

  var health = document.getElementById('upstream-health');
  health.textContent = s.upstream.healthy === null ? 'no traffic yet' : s.upstream.healthy ? 'healthy' : 'failing';
  health.className = 'badge' + (s.upstream.healthy === null ? '' : s.upstream.healthy ? ' ok' : ' bad');
  document.getElementById('upstream-url').textContent = s.upstream.url;
  var detail = [];
  if (s.upstream.last_ok) detail.push('last answer ' + ago(s.upstream.last_ok, now));
  if (s.upstream.last_error) detail.push('last error ' + s.upstream.last_error.code + ' ' + ago(s.upstream.last_error.at, now));
  detail.push(s.upstream.errors + ' error(s)');
  document.getElementById('upstream-detail').textContent = detail.join(' · ');

  document.getElementById('bytes-served').textContent = bytes(s.cache.bytes_served_to_devices);
  document.getElementById('bytes-fetched').textContent = bytes(s.cache.bytes_fetched_upstream);
  document.getElementById('bytes-saved').textContent = s.cache.enabled ? bytes(s.cache.bytes_saved) : 'cache disabled';

  fill('devices', 'devices-empty', s.devices, function (row, d) {
    cell(row, d.id, 'id');
    cell(row, d.address);
    cell(row, d.last_request);
    cell(row, ago(d.last_seen, now));
    cell(row, d.deployment ? d.deployment.status + ' (' + ago(d.deployment.at, now) + ')' : '—');
  });
  fill('fills', 'fills-empty', s.cache.fills, function (row, f) {
    cell(row, f.artifact, 'id');
    var bar = document.createElement('progress');
    bar.max = f.size || 1;
    bar.value = f.written;
    cell(row, '').appendChild(bar);
    cell(row, bytes(f.written) + ' / ' + bytes(f.size), 'num');
  });
  fill('cache', 'cache-empty', s.cache.entries, function (row, e) {
    cell(row, e.artifact, 'id');
    cell(row, bytes(e.size), 'num');
    cell(row, String(e.hits), 'num');
    cell(row, ago(e.last_served, now));
  });
  document.getElementById('updated').textContent = 'updated ' + new Date(now).toLocaleTimeString();
}

// The history (/api/status/history): five uPlot charts (uPlot is served by the admin listener
// from the npm package; it draws on canvas, so no value becomes markup here either).
var HISTORY_CHARTS = [
  { id: 'history-devices', series: [['devices_active', 'devices', '#2563eb']] },
  { id: 'history-requests', series: [['requests', 'requests', '#0f766e']] },
  // The uplink's bytes filled: where the two lines meet, the cache saved nothing.
  { id: 'history-bytes', bytes: true, series: [['bytes_fetched_upstream', 'from the uplink', '#dc2626', 'y', 'rgba(220, 38, 38, 0.15)'], ['bytes_served_to_devices', 'served to devices', '#16a34a']] },
  { id: 'history-journal', series: [['journal_queued', 'reports', '#9333ea'], ['journal_bytes', 'bytes', '#c2410c', 'bytes']] },
  { id: 'history-memory', bytes: true, series: [['rss_bytes', 'RSS', '#1d4ed8'], ['heap_used_bytes', 'V8 heap used', '#ea580c']] },
];
var charts = {};
var historyEvery = REFRESH_MS;

function bytesAxis(u, splits) { return splits.map(function (v) { return v == null ? '' : bytes(Math.round(v)); }); }

function chartOptions(spec, width) {
  var series = [{}];
  var axes = [{}, { size: 80, values: spec.bytes ? bytesAxis : undefined }];
  var scales = { x: { time: true } };
  spec.series.forEach(function (s) {
    var scale = s[3] === 'bytes' ? 'bytes' : 'y';
    series.push({
      label: s[1],
      stroke: s[2],
      fill: s[4],
      width: 1.5,
      scale: scale,
      value: spec.bytes || scale === 'bytes' ? function (u, v) { return v == null ? '—' : bytes(Math.round(v)); } : undefined,
    });
  });
  // A second figure of another unit gets its own scale and axis on the right.
  if (spec.series.some(function (s) { return s[3] === 'bytes'; })) {
    scales.bytes = {};
    axes.push({ scale: 'bytes', side: 1, size: 80, values: bytesAxis, grid: { show: false } });
  }
  return { width: width, height: 170, series: series, axes: axes, scales: scales, legend: { live: false } };
}

function renderHistory(h) {
  var every = h.interval_seconds;
  document.getElementById('history-note').textContent =
    '(one sample every ' + (every >= 60 ? every / 60 + ' min' : every + ' s') + ', ' + h.time.length + ' of ' + h.capacity + ' kept; requests and bytes per sample)';
  document.getElementById('history-empty').hidden = h.time.length > 0;
  historyEvery = Math.max(REFRESH_MS, every * 1000);
  HISTORY_CHARTS.forEach(function (spec) {
    var data = [h.time].concat(spec.series.map(function (s) { return h.series[s[0]]; }));
    var el = document.getElementById(spec.id);
    el.dataset.samples = String(h.time.length);
    if (charts[spec.id]) charts[spec.id].setData(data);
    else charts[spec.id] = new uPlot(chartOptions(spec, Math.max(200, el.clientWidth)), data, el);
  });
}

window.addEventListener('resize', function () {
  Object.keys(charts).forEach(function (id) {
    charts[id].setSize({ width: Math.max(200, document.getElementById(id).clientWidth), height: 170 });
  });
});

function refreshHistory() {
  fetch('/api/status/history', { cache: 'no-store' })
    .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
    .then(renderHistory)
    .catch(function (err) { document.getElementById('history-note').textContent = '(history unavailable: ' + err.message + ')'; })
    .finally(function () { setTimeout(refreshHistory, historyEvery); });
}

function refresh() {
  fetch('/api/status', { cache: 'no-store' })
    .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
    .then(render)
    .catch(function (err) { document.getElementById('updated').textContent = 'status unavailable: ' + err.message; })
    .finally(function () { setTimeout(refresh, REFRESH_MS); });
}

refresh();
refreshHistory();
