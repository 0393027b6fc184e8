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

function refresh() {
  fetch('/api/status', { cache: 'no-store' })
    .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
    .then(render)
    .catch(function (err) { document.getElementById('updated').textContent = 'status unavailable: ' + err.message; })
    .finally(function () { setTimeout(refresh, REFRESH_MS); });
}

refresh();
