// Warren's management UI: a small single-page app over the public management HTTP API (/api),
// the same one rabbitmqadmin and monitoring scripts use. Hash routes, one render function per
// page; every page refreshes its data every few seconds and keeps the rate history its charts
// draw on the client.
import {
  Chart, Colors, LineController, LineElement, PointElement, LinearScale, CategoryScale, Legend, Tooltip,
} from 'chart.js';

Chart.register(Colors, LineController, LineElement, PointElement, LinearScale, CategoryScale, Legend, Tooltip);

const main = document.getElementById('main');
const HISTORY_POINTS = 60;
// Refresh period: ?refresh=MS in the URL wins (tests use it), then the header's selector (kept
// for the browser tab), else 5 s as RabbitMQ's UI.
const REFRESH_CHOICES = [1000, 5000, 10000, 30000];
function refreshMs() {
  return Number(new URLSearchParams(location.search).get('refresh')) ||
    Number(sessionStorage.getItem('warren-refresh')) || 5000;
}

// ---- API access ----

function credentials() { return sessionStorage.getItem('warren-auth'); }

async function api(method, path, body) {
  // X-Requested-With: the broker then answers a failed login without a Basic challenge, which
  // would make the browser open its own login dialog.
  const headers = { authorization: 'Basic ' + credentials(), 'x-requested-with': 'XMLHttpRequest' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch('/api' + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401 && path !== '/whoami') { logout(); throw new Error('login required'); }
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error((data && (data.reason || data.error)) || res.statusText);
  return data;
}

const enc = encodeURIComponent;
// The default exchange's name in API paths, as in RabbitMQ's API.
const xname = (name) => enc(name === '' ? 'amq.default' : name);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g,
  (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
// Any figure the broker leaves out (an older broker, an object without traffic yet) shows as 0.
const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
// A *_oct_details rate as the RabbitMQ UI shows it: "1.2 kB/s".
function byteRate(details) {
  let r = num(details && details.rate);
  const units = ['B', 'kB', 'MB', 'GB'];
  let i = 0;
  while (r >= 1000 && i < units.length - 1) { r /= 1000; i += 1; }
  return `${r >= 100 || i === 0 ? Math.round(r) : r.toFixed(1)} ${units[i]}/s`;
}
const rate = (stats, field) => num(stats && stats[field + '_details'] && stats[field + '_details'].rate);
const fmtRate = (r) => (Math.round(r * 10) / 10).toFixed(1) + '/s';

// ---- page frame ----

const TABS = [
  ['overview', 'Overview'], ['connections', 'Connections'], ['channels', 'Channels'],
  ['exchanges', 'Exchanges'], ['queues', 'Queues'], ['admin', 'Admin'],
];

function frame(active) {
  document.getElementById('tabs').innerHTML = TABS.map(([id, title]) =>
    `<a href="#/${id}" id="tab-${id}" class="${id === active ? 'active' : ''}">${title}</a>`).join('');
  const user = sessionStorage.getItem('warren-user');
  const period = refreshMs();
  const choices = REFRESH_CHOICES.includes(period) ? REFRESH_CHOICES : [period, ...REFRESH_CHOICES];
  document.getElementById('who').innerHTML = user
    ? `<label for="refresh-select" class="inline">Refresh every</label> <select id="refresh-select">${choices.map((ms) =>
      `<option value="${ms}" ${ms === period ? 'selected' : ''}>${ms / 1000} s</option>`).join('')}</select>
       User <b>${esc(user)}</b><button id="logout">Log out</button>` : '';
  const button = document.getElementById('logout');
  if (button) button.onclick = logout;
  const select = document.getElementById('refresh-select');
  if (select) select.onchange = () => setRefresh(Number(select.value));
}

// A new period applies at once, keeping the page (and its charts' history).
function setRefresh(ms) {
  sessionStorage.setItem('warren-refresh', String(ms));
  const url = new URL(location.href);
  if (url.searchParams.has('refresh')) {
    url.searchParams.set('refresh', String(ms));
    history.replaceState(null, '', url);
  }
  if (currentRefresh) { clearInterval(refreshTimer); refreshTimer = setInterval(currentRefresh, refreshMs()); }
}

function logout() {
  sessionStorage.removeItem('warren-auth');
  sessionStorage.removeItem('warren-user');
  location.hash = '#/login';
}

function showError(where, e) {
  const el = document.getElementById(where);
  if (el) { el.className = 'error'; el.textContent = e.message || String(e); }
}
function showOk(where, text) {
  const el = document.getElementById(where);
  if (el) { el.className = 'ok'; el.textContent = text; }
}

function table(headers, rows, id) {
  return `<table id="${id}"><thead><tr>${headers.map((h) => `<th>${h}</th>`).join('')}</tr></thead>` +
    `<tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

// A line chart fed one point per refresh. The canvas carries each series' highest value shown
// (data-peak, a JSON array) so a test can tell what the chart draws without reading pixels.
class LiveChart {
  constructor(canvas, series) {
    this.canvas = canvas;
    this.chart = new Chart(canvas, {
      type: 'line',
      data: { labels: [], datasets: series.map((label) => ({ label, data: [], tension: 0.2, pointRadius: 0 })) },
      options: { animation: false, responsive: false, scales: { y: { beginAtZero: true } } },
    });
  }
  push(values) {
    const d = this.chart.data;
    d.labels.push(new Date().toLocaleTimeString());
    values.forEach((v, i) => d.datasets[i].data.push(v));
    if (d.labels.length > HISTORY_POINTS) { d.labels.shift(); d.datasets.forEach((s) => s.data.shift()); }
    this.update();
  }
  // Starts from the broker's sample history: points = [[timestamp_ms, [values...]], ...] oldest first.
  seed(points) {
    const d = this.chart.data;
    for (const [at, values] of points.slice(-HISTORY_POINTS)) {
      d.labels.push(new Date(at).toLocaleTimeString());
      values.forEach((v, i) => d.datasets[i].data.push(v));
    }
    this.update();
  }
  update() {
    this.chart.update();
    this.canvas.dataset.peak = JSON.stringify(this.chart.data.datasets.map((s) => Math.max(0, ...s.data)));
  }
  destroy() { this.chart.destroy(); }
}

// ---- the broker's sample history (RabbitMQ's msg_rates_age / lengths_age parameters) ----

const HISTORY = '?msg_rates_age=300&msg_rates_incr=5&lengths_age=300&lengths_incr=5';
const RATE_FIELDS = ['publish', 'deliver_get', 'ack'];
// One field's samples, oldest first (the API lists them newest first).
const samples = (field, stats) => (((stats || {})[field + '_details'] || {}).samples || []).slice().reverse();
// Chart points [timestamp, [rate per field]] from counter samples: the rise between two
// samples over the time between them.
function ratePoints(stats, fields) {
  const series = fields.map((f) => samples(f, stats));
  const points = [];
  for (let i = 1; i < series[0].length; i++) {
    const dt = (series[0][i].timestamp - series[0][i - 1].timestamp) / 1000;
    points.push([series[0][i].timestamp, series.map((s) => (s[i] && s[i - 1] && dt > 0
      ? Math.max(0, (num(s[i].sample) - num(s[i - 1].sample)) / dt) : 0))]);
  }
  return points;
}

// ---- router ----

let refreshTimer = null;
let currentRefresh = null;
let cleanups = [];

// A refresh that fails (broker restarting, object deleted) says so on the page and tries again
// at the next tick instead of leaving an unhandled rejection.
function guarded(refresh) {
  return async () => {
    try {
      await refresh();
      const el = document.getElementById('refresh-error');
      if (el) el.remove();
    } catch (e) {
      if (!credentials()) return;
      let el = document.getElementById('refresh-error');
      if (!el) {
        el = document.createElement('p');
        el.id = 'refresh-error';
        el.className = 'error';
        main.prepend(el);
      }
      el.textContent = 'Could not refresh: ' + (e.message || e);
    }
  };
}

function route() {
  clearInterval(refreshTimer);
  currentRefresh = null;
  cleanups.forEach((f) => f());
  cleanups = [];
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (!credentials() && parts[0] !== 'login') { location.hash = '#/login'; return; }
  const page = parts[0] || 'overview';
  frame(page);
  const pages = { login, overview, connections, channels, exchanges, queues, admin };
  const render = pages[page] || overview;
  const refresh = render(...parts.slice(1));
  if (typeof refresh === 'function') {
    currentRefresh = guarded(refresh);
    currentRefresh();
    refreshTimer = setInterval(currentRefresh, refreshMs());
  }
}
window.addEventListener('hashchange', route);

// ---- pages ----

function login() {
  main.innerHTML = `<h2>Log in</h2>
    <form class="box" id="login-form">
      <div><label for="login-user">Username</label><input id="login-user" autocomplete="username"></div>
      <div><label for="login-pass">Password</label><input id="login-pass" type="password" autocomplete="current-password"></div>
      <button id="login-submit">Log in</button> <span id="login-msg"></span>
    </form>`;
  document.getElementById('login-form').onsubmit = async (ev) => {
    ev.preventDefault();
    const user = document.getElementById('login-user').value;
    const pass = document.getElementById('login-pass').value;
    sessionStorage.setItem('warren-auth', btoa(unescape(encodeURIComponent(user + ':' + pass))));
    try {
      const me = await api('GET', '/whoami');
      sessionStorage.setItem('warren-user', me.name);
      location.hash = '#/overview';
    } catch (e) {
      sessionStorage.removeItem('warren-auth');
      showError('login-msg', new Error('Login failed'));
    }
  };
}

function overview() {
  main.innerHTML = `<h2>Overview</h2>
    <div class="totals" id="totals"></div>
    <h3>Queued messages</h3><canvas id="chart-queued" class="chart" width="640" height="220"></canvas>
    <h3>Message rates</h3><div id="rates"></div>
    <canvas id="chart-rates" class="chart" width="640" height="220"></canvas>
    <div id="node"></div>`;
  const queued = new LiveChart(document.getElementById('chart-queued'), ['Ready', 'Unacked']);
  const rates = new LiveChart(document.getElementById('chart-rates'), ['Publish', 'Deliver / get', 'Ack']);
  cleanups.push(() => { queued.destroy(); rates.destroy(); });
  // The first refresh asks for the broker's last five minutes of samples to start the charts.
  let seeded = false;
  const seed = (o) => {
    const q = o.queue_totals || {};
    const ready = samples('messages_ready', q), unacked = samples('messages_unacknowledged', q);
    queued.seed(ready.map((s, i) => [s.timestamp, [num(s.sample), num(unacked[i] && unacked[i].sample)]]));
    rates.seed(ratePoints(o.message_stats, RATE_FIELDS));
  };
  return async () => {
    const o = await api('GET', '/overview' + (seeded ? '' : HISTORY));
    if (!seeded) { seeded = true; seed(o); }
    const t = o.object_totals || {}, q = o.queue_totals || {}, m = o.message_stats || {};
    document.getElementById('totals').innerHTML = [
      ['Connections', t.connections], ['Channels', t.channels], ['Exchanges', t.exchanges],
      ['Queues', t.queues], ['Consumers', t.consumers], ['Ready', q.messages_ready],
      ['Unacked', q.messages_unacknowledged], ['Total', q.messages],
    ].map(([k, v]) => `<span>${k}: <b id="total-${k.toLowerCase()}">${num(v)}</b></span>`).join('');
    const r = [rate(m, 'publish'), rate(m, 'deliver_get'), rate(m, 'ack')];
    document.getElementById('rates').innerHTML =
      `Publish <b id="rate-publish">${fmtRate(r[0])}</b> · Deliver/get <b id="rate-deliver">${fmtRate(r[1])}</b> · Ack <b id="rate-ack">${fmtRate(r[2])}</b>`;
    queued.push([num(q.messages_ready), num(q.messages_unacknowledged)]);
    rates.push(r);
    document.getElementById('node').innerHTML = `<p>${esc(o.product_name)} ${esc(o.product_version)} on node ${esc(o.node)}</p>`;
  };
}

function connections() {
  main.innerHTML = '<h2>Connections</h2><p id="connections-msg"></p><div id="list"></div>';
  return async () => {
    const list = await api('GET', '/connections');
    document.getElementById('list').innerHTML = table(
      ['Name', 'User', 'Vhost', 'State', 'Protocol', 'Channels', 'From client', 'To client', ''],
      list.map((c) => [esc(c.name), esc(c.user), esc(c.vhost), esc(c.state), esc(c.protocol),
        num(c.channels), byteRate(c.recv_oct_details), byteRate(c.send_oct_details),
        `<button data-close="${esc(c.name)}">Close</button>`]), 'connections-table');
    document.querySelectorAll('[data-close]').forEach((b) => {
      b.onclick = async () => {
        try { await api('DELETE', '/connections/' + enc(b.dataset.close)); } catch (e) { showError('connections-msg', e); }
      };
    });
  };
}

function channels() {
  main.innerHTML = '<h2>Channels</h2><div id="list"></div>';
  return async () => {
    const list = await api('GET', '/channels');
    document.getElementById('list').innerHTML = table(
      ['Channel', 'User', 'Vhost', 'Consumers', 'Prefetch', 'Unacked', 'Confirm', 'Publish', 'Deliver / get', 'Ack'],
      list.map((c) => [esc(c.name), esc(c.user), esc(c.vhost), num(c.consumer_count), num(c.prefetch_count),
        num(c.messages_unacknowledged), c.confirm ? '●' : '', fmtRate(rate(c.message_stats, 'publish')),
        fmtRate(rate(c.message_stats, 'deliver_get')), fmtRate(rate(c.message_stats, 'ack'))]),
      'channels-table');
  };
}

function publishForm(id) {
  return `<form class="box" id="${id}">
    <div><label>Routing key</label><input name="routing_key"></div>
    <div><label>Delivery mode</label><select name="delivery_mode"><option value="1">1 - non-persistent</option><option value="2">2 - persistent</option></select></div>
    <div><label>Payload</label><textarea name="payload" rows="3" cols="40"></textarea></div>
    <button>Publish message</button> <span id="${id}-msg"></span></form>`;
}

function exchanges(vhost, name) {
  if (name !== undefined) return exchangeDetail(vhost, name);
  main.innerHTML = `<h2>Exchanges</h2><div id="list"></div>
    <h3>Add a new exchange</h3>
    <form class="box" id="add-exchange">
      <div><label>Virtual host</label><input name="vhost" value="/"></div>
      <div><label>Name</label><input name="name" id="exchange-name"></div>
      <div><label>Type</label><select name="type"><option>direct</option><option>fanout</option><option>topic</option><option>headers</option><option>x-delayed-message</option></select></div>
      <div><label>Durability</label><select name="durable"><option value="true">Durable</option><option value="false">Transient</option></select></div>
      <div><label>Auto delete</label><select name="auto_delete"><option value="false">No</option><option value="true">Yes</option></select></div>
      <div><label>Internal</label><select name="internal"><option value="false">No</option><option value="true">Yes</option></select></div>
      <button id="add-exchange-submit">Add exchange</button> <span id="add-exchange-msg"></span>
    </form>`;
  document.getElementById('add-exchange').onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    try {
      await api('PUT', `/exchanges/${enc(f.get('vhost'))}/${enc(f.get('name'))}`, {
        type: f.get('type'), durable: f.get('durable') === 'true',
        auto_delete: f.get('auto_delete') === 'true', internal: f.get('internal') === 'true', arguments: {},
      });
      showOk('add-exchange-msg', 'Exchange declared');
    } catch (e) { showError('add-exchange-msg', e); }
  };
  return async () => {
    const list = await api('GET', '/exchanges');
    document.getElementById('list').innerHTML = table(
      ['Vhost', 'Name', 'Type', 'Features', 'Message rate in', 'Message rate out'],
      list.map((x) => [esc(x.vhost),
        `<a href="#/exchanges/${enc(x.vhost)}/${xname(x.name)}">${esc(x.name || '(AMQP default)')}</a>`,
        esc(x.type), [x.durable ? 'D' : '', x.auto_delete ? 'AD' : '', x.internal ? 'I' : ''].join(' '),
        fmtRate(rate(x.message_stats, 'publish_in')), fmtRate(rate(x.message_stats, 'publish_out'))]),
      'exchanges-table');
  };
}

function exchangeDetail(vhost, name) {
  if (name === 'amq.default') name = '';
  const path = `/exchanges/${enc(vhost)}/${xname(name)}`;
  main.innerHTML = `<h2>Exchange: ${esc(name || '(AMQP default)')} <small>(${esc(vhost)})</small></h2>
    <div id="details"></div><h3>Bindings</h3><div id="bindings"></div>
    <form class="box" id="bind-form">
      <div><label>To queue</label><input name="queue"></div>
      <div><label>Routing key</label><input name="routing_key"></div>
      <button>Bind</button> <span id="bind-form-msg"></span></form>
    <h3>Publish message</h3>${publishForm('exchange-publish')}
    <button id="delete-exchange">Delete this exchange</button> <span id="delete-exchange-msg"></span>`;
  document.getElementById('bind-form').onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    try {
      await api('POST', `/bindings/${enc(vhost)}/e/${xname(name)}/q/${enc(f.get('queue'))}`,
        { routing_key: f.get('routing_key'), arguments: {} });
      showOk('bind-form-msg', 'Bound');
    } catch (e) { showError('bind-form-msg', e); }
  };
  wirePublish('exchange-publish', vhost, name, null);
  document.getElementById('delete-exchange').onclick = async () => {
    try { await api('DELETE', path); location.hash = '#/exchanges'; } catch (e) { showError('delete-exchange-msg', e); }
  };
  return async () => {
    const x = await api('GET', path);
    document.getElementById('details').innerHTML = table(['Type', 'Durable', 'Auto delete', 'Internal', 'Publish in', 'Publish out'],
      [[esc(x.type), x.durable, x.auto_delete, x.internal, fmtRate(rate(x.message_stats, 'publish_in')),
        fmtRate(rate(x.message_stats, 'publish_out'))]], 'exchange-details');
    const b = await api('GET', `${path}/bindings/source`);
    document.getElementById('bindings').innerHTML = table(['To', 'Routing key'],
      b.map((x2) => [esc(x2.destination), esc(x2.routing_key)]), 'exchange-bindings');
  };
}

function wirePublish(formId, vhost, exchange, defaultKey) {
  const form = document.getElementById(formId);
  if (defaultKey !== null) form.elements.routing_key.value = defaultKey;
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    try {
      const r = await api('POST', `/exchanges/${enc(vhost)}/${xname(exchange)}/publish`, {
        routing_key: f.get('routing_key'), payload: f.get('payload'), payload_encoding: 'string',
        properties: { delivery_mode: Number(f.get('delivery_mode')) },
      });
      if (r.routed) showOk(`${formId}-msg`, 'Message published.');
      else showError(`${formId}-msg`, new Error('Message published, but not routed.'));
    } catch (e) { showError(`${formId}-msg`, e); }
  };
}

// Queue arguments the add-queue form offers, with RabbitMQ's names and value types.
const QUEUE_ARGS = [
  ['x-message-ttl', 'Message TTL (ms)', 'number'], ['x-expires', 'Auto expire (ms)', 'number'],
  ['x-single-active-consumer', 'Single active consumer', 'bool'], ['x-max-length', 'Max length', 'number'],
  ['x-max-length-bytes', 'Max length bytes', 'number'], ['x-dead-letter-exchange', 'Dead letter exchange', 'string'],
  ['x-dead-letter-routing-key', 'Dead letter routing key', 'string'],
];

function queues(vhost, name) {
  if (name !== undefined) return queueDetail(vhost, name);
  main.innerHTML = `<h2>Queues</h2><div id="list"></div>
    <h3>Add a new queue</h3>
    <form class="box" id="add-queue">
      <div><label>Virtual host</label><input name="vhost" value="/"></div>
      <div><label>Name</label><input name="name" id="queue-name"></div>
      <div><label>Durability</label><select name="durable" id="queue-durable"><option value="true">Durable</option><option value="false">Transient</option></select></div>
      <div><label>Auto delete</label><select name="auto_delete"><option value="false">No</option><option value="true">Yes</option></select></div>
      ${QUEUE_ARGS.map(([k, title, type]) => `<div><label>${title}</label>${type === 'bool'
        ? `<select name="${k}" id="arg-${k}"><option value="">-</option><option value="true">true</option></select>`
        : `<input name="${k}" id="arg-${k}" ${type === 'number' ? 'type="number"' : ''}>`} <small>${k}</small></div>`).join('')}
      <div><label>Other argument</label><input name="extra_key" placeholder="key"> = <input name="extra_value" placeholder="value"></div>
      <button id="add-queue-submit">Add queue</button> <span id="add-queue-msg"></span>
    </form>`;
  document.getElementById('add-queue').onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const args = {};
    for (const [k, , type] of QUEUE_ARGS) {
      const v = f.get(k);
      if (v === '' || v === null) continue;
      args[k] = type === 'number' ? Number(v) : type === 'bool' ? v === 'true' : v;
    }
    if (f.get('extra_key')) {
      const v = f.get('extra_value');
      args[f.get('extra_key')] = v !== '' && !Number.isNaN(Number(v)) ? Number(v) : v;
    }
    try {
      await api('PUT', `/queues/${enc(f.get('vhost'))}/${enc(f.get('name'))}`, {
        durable: f.get('durable') === 'true', auto_delete: f.get('auto_delete') === 'true', arguments: args,
      });
      showOk('add-queue-msg', 'Queue declared');
    } catch (e) { showError('add-queue-msg', e); }
  };
  return async () => {
    const list = await api('GET', '/queues');
    document.getElementById('list').innerHTML = table(
      ['Vhost', 'Name', 'Features', 'Ready', 'Unacked', 'Total', 'Incoming', 'Deliver / get', 'Ack'],
      list.map((q) => [esc(q.vhost), `<a href="#/queues/${enc(q.vhost)}/${enc(q.name)}">${esc(q.name)}</a>`,
        [q.durable ? 'D' : '', q.auto_delete ? 'AD' : '', q.exclusive ? 'Excl' : '',
          ...Object.keys(q.arguments || {}).map((k) => esc(k.replace(/^x-/, '')))].filter(Boolean).join(' '),
        num(q.messages_ready), num(q.messages_unacknowledged), num(q.messages),
        fmtRate(rate(q.message_stats, 'publish')), fmtRate(rate(q.message_stats, 'deliver_get')),
        fmtRate(rate(q.message_stats, 'ack'))]), 'queues-table');
  };
}

function queueDetail(vhost, name) {
  const path = `/queues/${enc(vhost)}/${enc(name)}`;
  main.innerHTML = `<h2>Queue <span id="queue-title">${esc(name)}</span> <small>(${esc(vhost)})</small></h2>
    <div id="details"></div>
    <h3>Message rates</h3><div id="queue-rates"></div>
    <canvas id="chart-queue-rates" class="chart" width="640" height="220"></canvas>
    <h3>Consumers</h3><div id="consumers"></div>
    <h3>Bindings</h3><div id="bindings"></div>
    <h3>Publish message</h3>${publishForm('queue-publish')}
    <h3>Get messages</h3>
    <form class="box" id="get-form">
      <div><label>Ack mode</label><select name="ackmode"><option value="ack_requeue_true">Nack message requeue true</option><option value="ack_requeue_false">Automatic ack</option><option value="reject_requeue_true">Reject requeue true</option><option value="reject_requeue_false">Reject requeue false</option></select></div>
      <div><label>Encoding</label><select name="encoding"><option value="auto">Auto string / base64</option><option value="base64">base64</option></select></div>
      <div><label>Messages</label><input name="count" value="1" type="number"></div>
      <button id="get-submit">Get Message(s)</button> <span id="get-form-msg"></span>
    </form><div id="got"></div>
    <button id="purge-queue">Purge messages</button> <span id="purge-msg"></span>
    <button id="delete-queue">Delete queue</button> <span id="delete-queue-msg"></span>`;
  const chart = new LiveChart(document.getElementById('chart-queue-rates'), ['Publish', 'Deliver / get', 'Ack']);
  cleanups.push(() => chart.destroy());
  wirePublish('queue-publish', vhost, '', name);
  document.getElementById('get-form').onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    try {
      const got = await api('POST', `${path}/get`,
        { count: Number(f.get('count')), ackmode: f.get('ackmode'), encoding: f.get('encoding'), truncate: 50000 });
      document.getElementById('got').innerHTML = got.length === 0 ? '<p id="got-empty">Queue is empty</p>'
        : got.map((m, i) => `<div class="box"><b>Message ${i + 1}</b> (exchange "${esc(m.exchange)}", routing key "${esc(m.routing_key)}", redelivered ${m.redelivered}, ${m.message_count} left)
          <pre class="payload" data-testid="payload">${esc(m.payload)}</pre></div>`).join('');
    } catch (e) { showError('get-form-msg', e); }
  };
  document.getElementById('purge-queue').onclick = async () => {
    try { await api('DELETE', `${path}/contents`); showOk('purge-msg', 'Queue purged'); } catch (e) { showError('purge-msg', e); }
  };
  document.getElementById('delete-queue').onclick = async () => {
    try { await api('DELETE', path); location.hash = '#/queues'; } catch (e) { showError('delete-queue-msg', e); }
  };
  let seeded = false;
  return async () => {
    const q = await api('GET', path + (seeded ? '' : HISTORY));
    if (!seeded) { seeded = true; chart.seed(ratePoints(q.message_stats, RATE_FIELDS)); }
    document.getElementById('details').innerHTML = table(
      ['Durable', 'Auto delete', 'Exclusive', 'Arguments', 'Policy', 'Consumers', 'Ready', 'Unacked', 'Total'],
      [[q.durable, q.auto_delete, q.exclusive, esc(JSON.stringify(q.arguments)), esc(q.policy || ''),
        num(q.consumers), num(q.messages_ready), num(q.messages_unacknowledged), num(q.messages)]], 'queue-details');
    const m = q.message_stats;
    const r = [rate(m, 'publish'), rate(m, 'deliver_get'), rate(m, 'ack')];
    document.getElementById('queue-rates').innerHTML =
      `Publish <b id="queue-rate-publish">${fmtRate(r[0])}</b> · Deliver/get <b id="queue-rate-deliver">${fmtRate(r[1])}</b> · Ack <b>${fmtRate(r[2])}</b> · Published in total <b id="queue-published">${num(m && m.publish)}</b>`;
    chart.push(r);
    const consumers = await api('GET', `/consumers/${enc(vhost)}`);
    document.getElementById('consumers').innerHTML = table(['Channel', 'Tag', 'Ack required', 'Prefetch'],
      consumers.filter((c) => c.queue.name === name).map((c) => [esc(c.channel_details.name), esc(c.consumer_tag),
        c.ack_required, c.prefetch_count]), 'queue-consumers');
    const b = await api('GET', `${path}/bindings`);
    document.getElementById('bindings').innerHTML = table(['From', 'Routing key'],
      b.map((x) => [esc(x.source || '(AMQP default)'), esc(x.routing_key)]), 'queue-bindings');
  };
}

function admin() {
  main.innerHTML = `<h2>Admin</h2><p id="admin-msg"></p>
    <h3>Users</h3><div id="users"></div>
    <form class="box" id="add-user">
      <div><label>Username</label><input name="name"></div>
      <div><label>Password</label><input name="password" type="password"></div>
      <div><label>Tags</label><input name="tags" placeholder="administrator, monitoring, management"></div>
      <button>Add user</button> <span id="add-user-msg"></span></form>
    <h3>Virtual hosts</h3><div id="vhosts"></div>
    <form class="box" id="add-vhost"><div><label>Name</label><input name="name"></div>
      <button>Add virtual host</button> <span id="add-vhost-msg"></span></form>
    <h3>Permissions</h3><div id="permissions"></div>
    <form class="box" id="set-permission">
      <div><label>User</label><input name="user"></div><div><label>Virtual host</label><input name="vhost" value="/"></div>
      <div><label>Configure regexp</label><input name="configure" value=".*"></div>
      <div><label>Write regexp</label><input name="write" value=".*"></div>
      <div><label>Read regexp</label><input name="read" value=".*"></div>
      <button>Set permission</button> <span id="set-permission-msg"></span></form>
    <h3>Policies</h3><div id="policies"></div>
    <form class="box" id="add-policy">
      <div><label>Virtual host</label><input name="vhost" value="/"></div><div><label>Name</label><input name="name"></div>
      <div><label>Pattern</label><input name="pattern"></div>
      <div><label>Apply to</label><select name="apply-to"><option>all</option><option>queues</option><option>exchanges</option></select></div>
      <div><label>Priority</label><input name="priority" type="number" value="0"></div>
      <div><label>Definition (JSON)</label><input name="definition" value='{"max-length": 1000}' size="40"></div>
      <button>Add policy</button> <span id="add-policy-msg"></span></form>`;
  const submit = (id, fn) => {
    document.getElementById(id).onsubmit = async (ev) => {
      ev.preventDefault();
      try { await fn(new FormData(ev.target)); showOk(`${id}-msg`, 'Done'); await refresh(); } catch (e) { showError(`${id}-msg`, e); }
    };
  };
  submit('add-user', (f) => api('PUT', `/users/${enc(f.get('name'))}`, { password: f.get('password'), tags: f.get('tags') }));
  submit('add-vhost', (f) => api('PUT', `/vhosts/${enc(f.get('name'))}`, {}));
  submit('set-permission', (f) => api('PUT', `/permissions/${enc(f.get('vhost'))}/${enc(f.get('user'))}`,
    { configure: f.get('configure'), write: f.get('write'), read: f.get('read') }));
  submit('add-policy', (f) => api('PUT', `/policies/${enc(f.get('vhost'))}/${enc(f.get('name'))}`, {
    pattern: f.get('pattern'), 'apply-to': f.get('apply-to'), priority: Number(f.get('priority')),
    definition: JSON.parse(f.get('definition')),
  }));
  const del = (attr, pathOf) => document.querySelectorAll(`[${attr}]`).forEach((b) => {
    b.onclick = async () => {
      try { await api('DELETE', pathOf(b.getAttribute(attr))); await refresh(); } catch (e) { showError('admin-msg', e); }
    };
  });
  const refresh = async () => {
    const users = await api('GET', '/users');
    document.getElementById('users').innerHTML = table(['Name', 'Tags', ''], users.map((u) =>
      [esc(u.name), esc([].concat(u.tags).join(', ')), `<button data-del-user="${esc(u.name)}">Delete</button>`]), 'users-table');
    const vhosts = await api('GET', '/vhosts');
    document.getElementById('vhosts').innerHTML = table(['Name', 'Ready', 'Unacked', 'Total', ''], vhosts.map((v) =>
      [esc(v.name), num(v.messages_ready), num(v.messages_unacknowledged), num(v.messages), `<button data-del-vhost="${esc(v.name)}">Delete</button>`]), 'vhosts-table');
    const perms = await api('GET', '/permissions');
    document.getElementById('permissions').innerHTML = table(['User', 'Vhost', 'Configure', 'Write', 'Read'],
      perms.map((p) => [esc(p.user), esc(p.vhost), esc(p.configure), esc(p.write), esc(p.read)]), 'permissions-table');
    const policies = await api('GET', '/policies');
    document.getElementById('policies').innerHTML = table(['Vhost', 'Name', 'Pattern', 'Apply to', 'Definition', 'Priority', ''],
      policies.map((p) => [esc(p.vhost), esc(p.name), esc(p.pattern), esc(p['apply-to']), esc(JSON.stringify(p.definition)),
        p.priority, `<button data-del-policy="${esc(enc(p.vhost) + '/' + enc(p.name))}">Delete</button>`]), 'policies-table');
    del('data-del-user', (n) => `/users/${enc(n)}`);
    del('data-del-vhost', (n) => `/vhosts/${enc(n)}`);
    del('data-del-policy', (p) => `/policies/${p}`);
  };
  return refresh;
}

route();
