// StreamHouse console: a single-page app over the agent's /api/v1 JSON API (same origin).
// Vanilla JS, no build step, no external resources. Hash routes:
//   #/                 dashboard          #/topics          topic list + create
//   #/topics/NAME      one topic          #/groups          consumer groups
//   #/groups/ID        one group          #/agents          agents + leases
//   #/console          send a message
'use strict';
(function () {
  const REFRESH_MS = 2000;
  const RATE_HISTORY = 60; // samples kept for the dashboard charts (2 min at 2 s)

  // ---- small helpers ---------------------------------------------------------------------
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  const esc = (s) => String(s == null ? '' : s).replace(/[&<>"']/g, (c) => ESC[c]);
  const enc = encodeURIComponent;
  const exact = (n) => (n == null ? '' : Number(n).toLocaleString('en-US'));

  function setHTML(el, html) {
    if (el && el._html !== html) {
      el.innerHTML = html;
      el._html = html;
    }
  }

  function scaled(n, steps, base) {
    let v = Math.abs(n), i = 0;
    while (v >= base && i < steps.length - 1) { v /= base; i++; }
    const digits = i === 0 ? (Number.isInteger(v) ? 0 : 1) : (v < 100 ? 1 : 0);
    let s = v.toFixed(digits);
    if (s.endsWith('.0') && i === 0) s = s.slice(0, -2);
    return { text: (n < 0 ? '-' : '') + s, unit: steps[i] };
  }
  // 1234 -> "1.2k"
  function fmtCount(n) {
    if (n == null || isNaN(n)) return '—';
    const r = scaled(Number(n), ['', 'k', 'M', 'G', 'T'], 1000);
    return r.text + r.unit;
  }
  // 3565158 -> "3.4 MiB"
  function fmtBytes(n) {
    if (n == null || isNaN(n)) return '—';
    const r = scaled(Number(n), ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'], 1024);
    return r.text + ' ' + r.unit;
  }
  function fmtRate(perSec) {
    if (perSec == null) return '—';
    if (perSec > 0 && perSec < 10) return perSec.toFixed(1);
    return fmtCount(Math.round(perSec));
  }
  function fmtSpan(ms) {
    const s = Math.abs(ms) / 1000;
    if (s < 1) return null;
    if (s < 60) return Math.floor(s) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min';
    if (s < 86400) return Math.floor(s / 3600) + ' h';
    return Math.floor(s / 86400) + ' d';
  }
  // a Unix-ms time relative to now: "5 s ago", "in 12 s"
  function fmtAgo(ms) {
    if (ms == null) return '—';
    const d = Date.now() - Number(ms);
    const span = fmtSpan(d);
    if (span == null) return 'just now';
    return d >= 0 ? span + ' ago' : 'in ' + span;
  }
  function fmtUptime(sec) {
    if (sec == null) return '—';
    sec = Math.floor(sec);
    const d = Math.floor(sec / 86400), h = Math.floor((sec % 86400) / 3600), m = Math.floor((sec % 3600) / 60);
    if (d) return d + ' d ' + h + ' h';
    if (h) return h + ' h ' + m + ' min';
    if (m) return m + ' min ' + (sec % 60) + ' s';
    return sec + ' s';
  }
  const pad = (n, w) => String(n).padStart(w || 2, '0');
  function fmtTime(ms) {
    if (ms == null || ms < 0) return '—';
    const d = new Date(Number(ms));
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
      pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + '.' + pad(d.getMilliseconds(), 3);
  }
  const count = (n, what) => '<span title="' + esc(exact(n)) + ' ' + what + '">' + fmtCount(n) + '</span>';
  const bytes = (n) => '<span title="' + esc(exact(n)) + ' bytes">' + fmtBytes(n) + '</span>';
  const ago = (ms) => '<span title="' + esc(fmtTime(ms)) + '">' + esc(fmtAgo(ms)) + '</span>';
  const topicLink = (t) => '<a href="#/topics/' + enc(t) + '">' + esc(t) + '</a>';
  const groupLink = (g) => '<a href="#/groups/' + enc(g) + '">' + esc(g) + '</a>';
  function lagCell(lag) {
    if (lag == null) return '<span class="dim">—</span>';
    return '<span class="' + (lag > 0 ? 'lag-pos' : 'lag-0') + '" title="' + esc(exact(lag)) + ' messages">' + fmtCount(lag) + '</span>';
  }
  function stateBadge(state) {
    const cls = { Stable: 'ok', Empty: '', Dead: 'bad', PreparingRebalance: 'warn', CompletingRebalance: 'warn' }[state];
    return '<span class="badge ' + (cls || '') + '">' + esc(state || 'unknown') + '</span>';
  }
  function agentRef(id) {
    if (id == null) return '<span class="badge bad">none</span>';
    const self = state.cluster && state.cluster.agent_id === id;
    return '<span class="mono">' + esc(id) + '</span>' + (self ? ' <span class="badge accent" title="the agent serving this console">this</span>' : '');
  }
  function card(label, valueHtml, sub, extra) {
    return '<div class="card"><div class="label">' + esc(label) + '</div><div class="value">' + valueHtml +
      '</div><div class="sub' + (extra && extra.bad ? ' bad' : '') + '">' + (sub || '') + '</div>' + ((extra && extra.html) || '') + '</div>';
  }
  const unit = (u) => '<span class="unit">' + esc(u) + '</span>';
  function emptyRow(cols, text) { return '<tr><td class="empty" colspan="' + cols + '">' + text + '</td></tr>'; }

  // a larger area chart of the last RATE_HISTORY samples, newest on the right
  function chart(values) {
    const w = 600, h = 72;
    const grid = '<line x1="0" y1="' + (h - 0.5) + '" x2="' + w + '" y2="' + (h - 0.5) + '" stroke="#e3e6ea"/>' +
      '<line x1="0" y1="' + (h / 2) + '" x2="' + w + '" y2="' + (h / 2) + '" stroke="#eef0f3" stroke-dasharray="4 4"/>';
    if (!values || values.length < 2) return '<svg class="chart" viewBox="0 0 ' + w + ' ' + h + '" preserveAspectRatio="none">' + grid + '</svg>';
    const max = Math.max(1, ...values) * 1.15;
    const step = w / (RATE_HISTORY - 1);
    const x0 = w - step * (values.length - 1);
    const pts = values.map((v, i) => (x0 + i * step).toFixed(1) + ',' + (h - 1 - (v / max) * (h - 4)).toFixed(1));
    return '<svg class="chart" viewBox="0 0 ' + w + ' ' + h + '" preserveAspectRatio="none">' + grid +
      '<polygon points="' + x0.toFixed(1) + ',' + h + ' ' + pts.join(' ') + ' ' + w + ',' + h + '" fill="#e8eefc"/>' +
      '<polyline points="' + pts.join(' ') + '" fill="none" stroke="#2458d6" stroke-width="1.6" vector-effect="non-scaling-stroke" stroke-linejoin="round"/></svg>';
  }

  // ---- API ---------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }
  async function api(method, path, body) {
    const init = { method: method, cache: 'no-store', headers: { accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'NETWORK_ERROR', 'cannot reach the agent (' + e.message + ')');
    }
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!resp.ok) {
      const err = (data && data.error) || {};
      throw new ApiError(resp.status, err.code || 'HTTP_' + resp.status, err.message || text.slice(0, 300) || resp.statusText);
    }
    return data;
  }
  const get = (path) => api('GET', path);

  // ---- banners -----------------------------------------------------------------------------
  // key 'refresh' is the background-refresh error (cleared by the next good refresh); other
  // banners stay until dismissed or until the next navigation.
  let flash = null; // shown after the next navigation
  function banner(key, kind, html) {
    const box = $('#banners');
    let el = key ? $$('.banner', box).find((b) => b.dataset.key === key) : null;
    if (!el) {
      el = document.createElement('div');
      el.dataset.key = key || '';
      box.appendChild(el);
    }
    el.className = 'banner ' + kind;
    el.setAttribute('role', kind === 'info' ? 'status' : 'alert');
    el.innerHTML = '<div class="msg">' + html + '</div><button type="button" title="Dismiss" aria-label="Dismiss">×</button>';
    el.querySelector('button').onclick = () => el.remove();
  }
  function errorBanner(key, err, what) {
    const code = err && err.code ? err.code : 'ERROR';
    const status = err && err.status ? ' <span class="dim">(HTTP ' + esc(err.status) + ')</span>' : '';
    banner(key, 'error', (what ? '<b>' + esc(what) + ' failed:</b> ' : '') + '<span class="code">' + esc(code) + '</span>' +
      status + ' — ' + esc((err && err.message) || String(err)));
  }
  function infoBanner(html) { banner('info', 'info', html); }
  function clearBanner(key) { $$('.banner', $('#banners')).forEach((b) => { if (b.dataset.key === key) b.remove(); }); }
  function clearBanners() { $('#banners').innerHTML = ''; }

  // run a write action from a form: disables the submit button, reports errors as a banner
  async function action(what, btn, fn) {
    if (btn) btn.disabled = true;
    clearBanner('action');
    try {
      return await fn();
    } catch (e) {
      errorBanner('action', e, what);
      return undefined;
    } finally {
      if (btn) btn.disabled = false;
    }
  }

  // ---- cluster state shared by every page ----------------------------------------------------
  const state = {
    cluster: null,
    samples: [],        // {t, messages} for the produce rate
    outSamples: [],     // {t, records} for the fetch rate (this agent's /metrics)
    produceRates: [],
    fetchRates: [],
    metricsAvailable: null,
    topicNames: [],
  };

  function pushRate(samples, rates, t, v) {
    const prev = samples[samples.length - 1];
    samples.push({ t: t, v: v });
    if (samples.length > 2) samples.shift();
    if (prev && t > prev.t) {
      rates.push(Math.max(0, ((v - prev.v) * 1000) / (t - prev.t)));
      if (rates.length > RATE_HISTORY) rates.shift();
    }
  }

  async function refreshCluster() {
    const c = await get('/api/v1/cluster');
    state.cluster = c;
    pushRate(state.samples, state.produceRates, Date.now(), Number(c.messages) || 0);
    document.body.classList.toggle('read-only', !!c.read_only);
    setHTML($('#sidebar-foot'),
      (c.read_only ? '<div style="margin-bottom:6px"><span class="badge warn" id="read-only-badge">read-only</span></div>' : '') +
      '<div><span>Cluster</span><span class="mono" title="' + esc(c.cluster_id) + '">' + esc(String(c.cluster_id || '').slice(0, 12)) + '</span></div>' +
      '<div><span>Agent</span><span>' + esc(c.agent_id) + '</span></div>' +
      '<div><span>Version</span><span>' + esc(c.version) + '</span></div>' +
      '<div><span>Uptime</span><span>' + esc(fmtUptime(c.uptime_seconds)) + '</span></div>');
    return c;
  }

  // sum of one counter over all its label sets in Prometheus text; null when the metric is unknown
  function sumMetric(text, name) {
    let known = false, sum = 0;
    for (const line of text.split('\n')) {
      if (line.startsWith('#')) {
        if (line.startsWith('# TYPE ' + name + ' ') || line.startsWith('# HELP ' + name + ' ')) known = true;
        continue;
      }
      if (line.startsWith(name + '{') || line.startsWith(name + ' ')) {
        known = true;
        const parts = line.trim().split(/\s+/);
        // "name{labels} value [timestamp]": the value follows the closing brace
        const afterLabels = line.slice(line.lastIndexOf('}') + 1).trim().split(/\s+/);
        const v = Number(line.includes('{') ? afterLabels[0] : parts[1]);
        if (!isNaN(v)) sum += v;
      }
    }
    return known ? sum : null;
  }

  // the fetch rate: this agent's streamhouse_topic_records_out_total, summed over topics. An
  // agent without /metrics is asked once; a counter not yet in the output counts as 0.
  async function refreshMetrics() {
    if (state.metricsAvailable === false) return;
    let text;
    try {
      const resp = await fetch('/metrics', { cache: 'no-store' });
      if (!resp.ok) { state.metricsAvailable = false; return; }
      text = await resp.text();
    } catch (e) {
      return;
    }
    state.metricsAvailable = true;
    const out = sumMetric(text, 'streamhouse_topic_records_out_total');
    pushRate(state.outSamples, state.fetchRates, Date.now(), out == null ? 0 : out);
  }

  // ---- pages --------------------------------------------------------------------------------
  // A page: {nav, title, crumbs, mount(el), refresh()}. mount() draws the frame once (forms live
  // there and are never redrawn); refresh() fetches and redraws only the data regions.

  function dashboardPage() {
    let el;
    return {
      nav: 'dashboard',
      title: 'Dashboard',
      mount(root) {
        el = root;
        root.innerHTML =
          '<div class="cards" id="dash-cards"></div>' +
          '<div class="panel"><div class="panel-head"><h2>Throughput</h2><span class="hint">sampled every 2 s while this page is open</span></div><div class="throughput" id="dash-rates"></div></div>' +
          '<div class="grid-2">' +
          '<div class="panel"><div class="panel-head"><h2>Topics</h2><a class="hint" href="#/topics">all topics →</a></div><div class="table-wrap" id="dash-topics"></div></div>' +
          '<div class="panel"><div class="panel-head"><h2>Consumer groups</h2><a class="hint" href="#/groups">all groups →</a></div><div class="table-wrap" id="dash-groups"></div></div>' +
          '</div>' +
          '<div class="panel"><div class="panel-head"><h2>Agents</h2><a class="hint" href="#/agents">agents and leases →</a></div><div class="table-wrap" id="dash-agents"></div></div>';
      },
      async refresh() {
        const [topics, agents, groups] = await Promise.all([
          get('/api/v1/topics'), get('/api/v1/agents'), get('/api/v1/groups?offset=0&limit=100'), refreshMetrics(),
        ]);
        const c = state.cluster;
        const pr = state.produceRates, fr = state.fetchRates;
        const lastP = pr.length ? pr[pr.length - 1] : null;
        const lastF = fr.length ? fr[fr.length - 1] : null;
        const totalLag = groups.groups.reduce((a, g) => a + (Number(g.lag) || 0), 0);
        setHTML($('#dash-cards', el),
          card('Topics', fmtCount(c.topics), count(c.partitions, 'partitions') + ' partitions') +
          card('Partitions', fmtCount(c.partitions),
            c.leaderless_partitions ? fmtCount(c.leaderless_partitions) + ' without a leader' : 'all have a leader',
            { bad: c.leaderless_partitions > 0 }) +
          card('Agents', fmtCount(c.agents), 'this console: agent ' + esc(c.agent_id)) +
          card('Messages stored', '<span title="' + esc(exact(c.messages)) + ' messages">' + fmtCount(c.messages) + '</span>' + unit('msgs'), bytes(c.bytes) + ' in segments') +
          card('Consumer groups', fmtCount(c.groups), (totalLag ? fmtCount(totalLag) + ' msgs total lag' : 'no lag')));
        const rateBox = (label, id, v, rates, sub) => '<div id="' + id + '"><div class="label">' + esc(label) + '</div><div class="value">' + fmtRate(v) + unit('msgs/s') +
          '</div><div class="sub">' + sub + (rates.length > 1 ? ' · peak ' + fmtRate(Math.max(...rates)) + ' msgs/s' : '') + '</div>' + chart(rates) + '<div class="chart-axis"><span>2 min ago</span><span>now</span></div></div>';
        setHTML($('#dash-rates', el),
          rateBox('Produce rate', 'produce-rate', lastP, pr, lastP == null ? 'measuring…' : 'growth of stored messages, whole cluster') +
          (state.metricsAvailable ? rateBox('Fetch rate', 'fetch-rate', lastF, fr, lastF == null ? 'measuring…' : 'records served by this agent (/metrics)') : ''));
        $('#dash-rates', el).style.gridTemplateColumns = state.metricsAvailable ? '' : 'minmax(0, 1fr)';

        const top = topics.slice().sort((a, b) => b.messages - a.messages || a.name.localeCompare(b.name)).slice(0, 8);
        setHTML($('#dash-topics', el),
          '<table><thead><tr><th>Topic</th><th class="num">Partitions</th><th class="num">Messages</th><th class="num">Size</th></tr></thead><tbody>' +
          (top.length ? top.map((t) => '<tr><td>' + topicLink(t.name) + '</td><td class="num">' + esc(t.partitions) +
            '</td><td class="num">' + count(t.messages, 'messages') + '</td><td class="num">' + bytes(t.bytes) + '</td></tr>').join('')
            : emptyRow(4, 'No topics yet. <a href="#/topics">Create one</a>.')) +
          '</tbody></table>' + (topics.length > top.length ? '<div class="pager">' + (topics.length - top.length) + ' more</div>' : ''));

        const gs = groups.groups.slice().sort((a, b) => b.lag - a.lag || a.group.localeCompare(b.group)).slice(0, 8);
        setHTML($('#dash-groups', el),
          '<table><thead><tr><th>Group</th><th>State</th><th class="num">Members</th><th class="num">Lag</th></tr></thead><tbody>' +
          (gs.length ? gs.map((g) => '<tr><td>' + groupLink(g.group) + '</td><td>' + stateBadge(g.state) + '</td><td class="num">' +
            esc(g.members) + '</td><td class="num">' + lagCell(g.lag) + '</td></tr>').join('')
            : emptyRow(4, 'No consumer groups.')) +
          '</tbody></table>' + (groups.total > gs.length ? '<div class="pager">' + (groups.total - gs.length) + ' more</div>' : ''));

        setHTML($('#dash-agents', el), agentsTable(agents));
      },
    };
  }

  function agentsTable(agents) {
    return '<table><thead><tr><th>Agent</th><th>Address</th><th>Zone</th><th>Group</th><th>Last heartbeat</th><th>Registration expires</th>' +
      '<th class="num">Partitions led</th><th class="num">Groups coordinated</th></tr></thead><tbody>' +
      (agents.length ? agents.map((a) => '<tr><td class="nowrap">' + agentRef(a.id) + '</td><td class="mono">' + esc(a.address) + '</td><td>' +
        (a.zone == null ? '<span class="dim">—</span>' : esc(a.zone)) + '</td><td>' + esc(a.group) + '</td><td class="nowrap">' + ago(a.last_heartbeat_ms) +
        '</td><td class="nowrap">' + ago(a.registration_expires_ms) + '</td><td class="num">' + fmtCount(a.partitions_led) + '</td><td class="num">' +
        fmtCount(a.groups_coordinated) + '</td></tr>').join('') : emptyRow(8, 'No agents registered.')) +
      '</tbody></table>';
  }

  function agentsPage() {
    let el;
    return {
      nav: 'agents',
      title: 'Agents',
      mount(root) {
        el = root;
        root.innerHTML =
          '<div class="panel"><div class="panel-head"><h2>Agents</h2><span class="hint" id="agents-hint"></span></div><div class="table-wrap" id="agents-table"></div></div>' +
          '<div class="panel"><div class="panel-head"><h2>Partition leases</h2><span class="hint" id="leases-hint"></span></div><div class="table-wrap" id="leases-table"></div></div>';
      },
      async refresh() {
        const [agents, leases] = await Promise.all([get('/api/v1/agents'), get('/api/v1/leases')]);
        setHTML($('#agents-hint', el), agents.length + (agents.length === 1 ? ' agent' : ' agents') + ' registered');
        setHTML($('#agents-table', el), agentsTable(agents));
        leases.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
        const shown = leases.slice(0, 1000);
        setHTML($('#leases-hint', el), fmtCount(leases.length) + ' leased partitions' + (c0().leaderless_partitions ? ' · ' + fmtCount(c0().leaderless_partitions) + ' without a leader' : ''));
        setHTML($('#leases-table', el),
          '<table><thead><tr><th>Topic</th><th class="num">Partition</th><th>Leader</th><th class="num">Epoch</th><th>Expires</th></tr></thead><tbody>' +
          (shown.length ? shown.map((l) => '<tr><td>' + topicLink(l.topic) + '</td><td class="num">' + esc(l.partition) + '</td><td>' + agentRef(l.agent_id) +
            '</td><td class="num">' + esc(l.epoch) + '</td><td class="nowrap">' + ago(l.expires_ms) + '</td></tr>').join('') : emptyRow(5, 'No leases held.')) +
          '</tbody></table>' + (leases.length > shown.length ? '<div class="pager">showing the first ' + shown.length + ' of ' + exact(leases.length) + '</div>' : ''));
      },
    };
  }
  const c0 = () => state.cluster || {};

  function parseConfig(text) {
    const config = {};
    for (const part of text.split(/[\n,]/)) {
      const p = part.trim();
      if (!p) continue;
      const i = p.indexOf('=');
      if (i <= 0) throw new ApiError(0, 'INVALID_CONFIG', 'config entries are key=value; got "' + p + '"');
      config[p.slice(0, i).trim()] = p.slice(i + 1).trim();
    }
    return config;
  }
  function configChips(config) {
    const keys = Object.keys(config || {}).sort();
    if (!keys.length) return '<span class="dim">defaults</span>';
    return keys.map((k) => '<span class="hdr"><b>' + esc(k) + '</b>=' + esc(config[k]) + '</span>').join('');
  }

  function topicsPage() {
    let el, topics = [];
    function draw() {
      const f = ($('#topic-filter', el).value || '').toLowerCase();
      const shown = topics.filter((t) => t.name.toLowerCase().includes(f));
      setHTML($('#topics-hint', el), shown.length === topics.length ? topics.length + (topics.length === 1 ? ' topic' : ' topics') : shown.length + ' of ' + topics.length + ' topics');
      setHTML($('#topics-table', el),
        '<table id="topics"><thead><tr><th>Name</th><th class="num">Partitions</th><th class="num">Messages</th><th class="num">Size</th><th class="num">Groups</th><th class="num">Lag</th><th>Config</th></tr></thead><tbody>' +
        (shown.length ? shown.map((t) => '<tr data-topic="' + esc(t.name) + '"><td>' + topicLink(t.name) + '</td><td class="num">' + esc(t.partitions) +
          '</td><td class="num">' + count(t.messages, 'messages') + '</td><td class="num">' + bytes(t.bytes) + '</td><td class="num">' + esc(t.groups) +
          '</td><td class="num">' + count(t.lag, 'messages behind, summed over the groups reading it') + '</td><td>' + configChips(t.config) + '</td></tr>').join('')
          : emptyRow(7, topics.length ? 'No topic matches the filter.' : 'No topics yet.')) +
        '</tbody></table>');
    }
    return {
      nav: 'topics',
      title: 'Topics',
      mount(root) {
        el = root;
        root.innerHTML =
          '<div class="panel write" id="create-topic-panel"><div class="panel-head"><h2>Create a topic</h2></div><div class="panel-body">' +
          '<form id="create-topic-form" class="form-row" autocomplete="off">' +
          '<label class="field grow"><span>Name</span><input name="name" required placeholder="orders" pattern="[a-zA-Z0-9._\\-]+" title="letters, digits, . _ -"></label>' +
          '<label class="field"><span>Partitions</span><input name="partitions" type="number" min="1" value="1" required></label>' +
          '<label class="field grow"><span>Config <em>(optional, key=value, comma separated)</em></span><input name="config" placeholder="retention.ms=604800000"></label>' +
          '<button class="primary" type="submit">Create topic</button></form></div></div>' +
          '<div class="panel"><div class="panel-head"><h2>All topics <span class="hint" id="topics-hint"></span></h2>' +
          '<input id="topic-filter" type="search" placeholder="Filter topics" style="width:220px"></div><div class="table-wrap" id="topics-table"></div></div>';
        $('#topic-filter', el).addEventListener('input', draw);
        const form = $('#create-topic-form', el);
        form.addEventListener('submit', async (e) => {
          e.preventDefault();
          const name = form.name.value.trim();
          const created = await action('Creating the topic', form.querySelector('button'), async () => {
            const body = { name: name, partitions: Number(form.partitions.value) };
            const config = parseConfig(form.config.value);
            if (Object.keys(config).length) body.config = config;
            return api('POST', '/api/v1/topics', body);
          });
          if (created) {
            flash = ['info', 'Topic <b>' + esc(created.name || name) + '</b> created with ' + esc(created.partitions != null && typeof created.partitions === 'object' ? created.partitions.length : created.partitions) + ' partition(s).'];
            location.hash = '#/topics/' + enc(created.name || name);
          }
        });
      },
      async refresh() {
        topics = await get('/api/v1/topics');
        state.topicNames = topics.map((t) => t.name);
        draw();
      },
    };
  }

  function topicPage(name, params) {
    let el, topic = null, browse = null;
    function browseFormState() {
      const f = $('#browse-form', el);
      return { partition: Number(f.partition.value), from: f.from.value, offset: f.offset.value, time: f.time.value, limit: Number(f.limit.value) || 50 };
    }
    async function fetchMessages(explicitOffset) {
      const f = browseFormState();
      const p = topic && topic.partitions.find((x) => x.partition === f.partition);
      let q;
      if (explicitOffset != null) q = 'offset=' + explicitOffset;
      else if (f.from === 'offset') q = 'offset=' + (Number(f.offset) || 0);
      else if (f.from === 'timestamp') {
        const t = f.time ? new Date(f.time).getTime() : NaN;
        if (isNaN(t)) { errorBanner('action', new ApiError(0, 'INVALID_REQUEST', 'choose a date and time to start from'), 'Reading messages'); return; }
        q = 'timestamp=' + t;
      } else if (f.from === 'latest') q = 'offset=' + (p ? Math.max(p.log_start_offset, p.high_watermark - f.limit) : 0);
      else q = '';
      const url = '/api/v1/topics/' + enc(name) + '/partitions/' + f.partition + '/messages?' + (q ? q + '&' : '') + 'limit=' + Math.min(500, f.limit);
      const res = await action('Reading messages', $('#browse-form button', el), () => get(url));
      if (res) { browse = res; drawMessages(); }
    }
    function drawMessages() {
      const r = browse;
      const box = $('#messages', el);
      if (!r) { setHTML(box, '<div class="panel-body note">Choose a partition and where to start, then press Read.</div>'); return; }
      const rows = r.messages.map((m) => {
        const hdrs = (m.headers || []).map((h) => '<span class="hdr"><b>' + esc(h.key) + '</b>=' + (h.value == null ? '<i>null</i>' : esc(h.value)) +
          (h.value_encoding === 'base64' ? '<span class="badge enc">b64</span>' : '') + '</span>').join('');
        return '<tr><td class="num">' + esc(m.offset) + '</td><td class="nowrap"><span class="mono" title="' + esc(fmtAgo(m.timestamp)) + '">' + esc(fmtTime(m.timestamp)) + '</span></td>' +
          '<td class="val">' + payload(m.key, m.key_encoding) + '</td><td class="val">' + payload(m.value, m.value_encoding) + '</td><td>' + (hdrs || '<span class="dim">—</span>') + '</td></tr>';
      }).join('');
      const first = r.messages.length ? r.messages[0].offset : null;
      const last = r.messages.length ? r.messages[r.messages.length - 1].offset : null;
      setHTML(box,
        '<table id="messages-table"><thead><tr><th class="num">Offset</th><th>Timestamp</th><th>Key</th><th>Value</th><th>Headers</th></tr></thead><tbody>' +
        (rows || emptyRow(5, 'No messages here' + (r.next_offset >= r.high_watermark ? ' — this is the end of the partition.' : '.'))) + '</tbody></table>' +
        '<div class="pager"><span>partition ' + esc(r.partition) + ' · ' + (first == null ? 'no messages' : 'offsets ' + esc(first) + '–' + esc(last)) +
        ' · log ' + esc(r.log_start_offset) + '–' + esc(r.high_watermark) + '</span>' +
        (r.next_offset < r.high_watermark ? '<button type="button" id="browse-next">Next →</button>' : '') + '</div>');
      const next = $('#browse-next', el);
      if (next) next.onclick = () => fetchMessages(r.next_offset);
    }
    function syncPartitionSelect() {
      const sel = $('#browse-form', el).partition;
      const want = topic.partitions.map((p) => String(p.partition));
      const have = Array.from(sel.options).map((o) => o.value);
      if (want.join(',') === have.join(',')) return;
      const cur = sel.value || (params.get('partition') || '0');
      sel.innerHTML = want.map((p) => '<option value="' + p + '">' + p + '</option>').join('');
      sel.value = want.includes(cur) ? cur : want[0];
    }
    return {
      nav: 'topics',
      title: name,
      crumbs: '<a href="#/topics">Topics</a> /',
      mount(root) {
        el = root;
        const from = params.has('offset') ? 'offset' : params.has('timestamp') ? 'timestamp' : 'earliest';
        root.innerHTML =
          '<div class="cards" id="topic-cards"></div>' +
          '<div class="panel"><div class="panel-head"><h2>Partitions</h2><span class="hint" id="topic-id"></span></div><div class="table-wrap" id="partitions"></div></div>' +
          '<div class="panel" id="browser"><div class="panel-head"><h2>Messages</h2></div><div class="panel-body">' +
          '<form id="browse-form" class="form-row" autocomplete="off">' +
          '<label class="field"><span>Partition</span><select name="partition"></select></label>' +
          '<label class="field"><span>Start from</span><select name="from"><option value="earliest">earliest</option><option value="latest">latest</option><option value="offset">offset</option><option value="timestamp">timestamp</option></select></label>' +
          '<label class="field" data-for="offset"><span>Offset</span><input name="offset" type="number" min="0" value="' + esc(params.get('offset') || '0') + '"></label>' +
          '<label class="field" data-for="timestamp"><span>Time <em>(local)</em></span><input name="time" type="datetime-local" step="1"></label>' +
          '<label class="field"><span>Limit</span><input name="limit" type="number" min="1" max="500" value="50"></label>' +
          '<button class="primary" type="submit">Read</button></form></div>' +
          '<div class="table-wrap scroll" id="messages" style="border-top:1px solid var(--line)"></div></div>' +
          '<div class="grid-2">' +
          '<div class="panel"><div class="panel-head"><h2>Consumer groups</h2><span class="hint">reading this topic</span></div><div class="table-wrap" id="topic-groups"></div></div>' +
          '<div class="panel"><div class="panel-head"><h2>Configuration</h2></div><div class="panel-body" id="topic-config"></div></div>' +
          '</div>' +
          '<div class="panel write"><div class="panel-head"><h2>Administration</h2></div><div class="panel-body"><div class="form-row">' +
          '<form id="add-partitions-form" class="form-row"><label class="field"><span>Total partitions</span><input name="count" type="number" min="1" required></label>' +
          '<button type="submit">Add partitions</button></form><span style="flex:1"></span>' +
          '<button type="button" class="danger" id="delete-topic">Delete topic…</button></div></div></div>';
        const f = $('#browse-form', el);
        f.from.value = from;
        if (params.has('timestamp')) {
          const d = new Date(Number(params.get('timestamp')));
          f.time.value = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
        }
        const showInputs = () => $$('[data-for]', f).forEach((x) => { x.style.display = x.dataset.for === f.from.value ? '' : 'none'; });
        f.from.addEventListener('change', showInputs);
        showInputs();
        f.addEventListener('submit', (e) => { e.preventDefault(); fetchMessages(); });
        drawMessages();
        const af = $('#add-partitions-form', el);
        af.addEventListener('submit', async (e) => {
          e.preventDefault();
          const res = await action('Adding partitions', af.querySelector('button'), () =>
            api('POST', '/api/v1/topics/' + enc(name) + '/partitions', { count: Number(af.count.value) }));
          if (res) { infoBanner('Topic <b>' + esc(name) + '</b> now has ' + esc(af.count.value) + ' partitions.'); af.count.value = ''; tick(true); }
        });
        $('#delete-topic', el).addEventListener('click', async (e) => {
          if (!window.confirm('Delete topic "' + name + '" and all its messages? This cannot be undone.')) return;
          const res = await action('Deleting the topic', e.target, () => api('DELETE', '/api/v1/topics/' + enc(name)));
          if (res) { flash = ['info', 'Topic <b>' + esc(name) + '</b> deleted.']; location.hash = '#/topics'; }
        });
      },
      async refresh() {
        topic = await get('/api/v1/topics/' + enc(name));
        const parts = topic.partitions.slice().sort((a, b) => a.partition - b.partition);
        const leaderless = parts.filter((p) => p.leader == null).length;
        const lag = (topic.groups || []).reduce((a, g) => a + (Number(g.lag) || 0), 0);
        setHTML($('#topic-cards', el),
          card('Partitions', fmtCount(parts.length), leaderless ? leaderless + ' without a leader' : 'all have a leader', { bad: leaderless > 0 }) +
          card('Messages', '<span title="' + esc(exact(topic.messages)) + ' messages">' + fmtCount(topic.messages) + '</span>' + unit('msgs'), 'stored') +
          card('Size', fmtBytes(topic.bytes).replace(/ (\S+)$/, (m, u) => unit(u)), 'in segments') +
          card('Consumer groups', fmtCount((topic.groups || []).length), lag ? fmtCount(lag) + ' msgs total lag' : 'no lag'));
        setHTML($('#topic-id', el), 'topic id <span class="mono">' + esc(topic.id) + '</span>');
        setHTML($('#partitions', el),
          '<table id="partitions-table"><thead><tr><th class="num">Partition</th><th>Leader</th><th class="num">Leader epoch</th><th class="num">Log start</th><th class="num">High watermark</th><th class="num">Messages</th><th class="num">Size</th><th></th></tr></thead><tbody>' +
          (parts.length ? parts.map((p) => '<tr><td class="num">' + esc(p.partition) + '</td><td>' + agentRef(p.leader) + '</td><td class="num">' + esc(p.epoch) +
            '</td><td class="num">' + esc(p.log_start_offset) + '</td><td class="num">' + esc(p.high_watermark) + '</td><td class="num">' + count(p.messages, 'messages') +
            '</td><td class="num">' + bytes(p.bytes) + '</td><td class="num"><button type="button" class="link" data-browse="' + esc(p.partition) + '">browse</button></td></tr>').join('')
            : emptyRow(8, 'No partitions.')) + '</tbody></table>');
        $$('[data-browse]', el).forEach((b) => {
          b.onclick = () => {
            const f = $('#browse-form', el);
            f.partition.value = b.dataset.browse;
            f.from.value = 'earliest';
            f.from.dispatchEvent(new Event('change'));
            fetchMessages();
            $('#browser', el).scrollIntoView({ behavior: 'smooth', block: 'start' });
          };
        });
        const groups = (topic.groups || []).slice().sort((a, b) => a.group.localeCompare(b.group));
        setHTML($('#topic-groups', el),
          '<table id="topic-groups-table"><thead><tr><th>Group</th><th class="num">Lag</th></tr></thead><tbody>' +
          (groups.length ? groups.map((g) => '<tr><td>' + groupLink(g.group) + '</td><td class="num">' + lagCell(g.lag) + '</td></tr>').join('')
            : emptyRow(2, 'No group has committed offsets for this topic.')) + '</tbody></table>');
        const cfg = Object.keys(topic.config || {}).sort();
        setHTML($('#topic-config', el), cfg.length
          ? '<dl class="kv">' + cfg.map((k) => '<dt class="mono">' + esc(k) + '</dt><dd class="mono">' + esc(topic.config[k]) + '</dd>').join('') + '</dl>'
          : '<span class="note">No overrides: the broker defaults apply.</span>');
        const first = !$('#browse-form', el).partition.options.length;
        syncPartitionSelect();
        const af = $('#add-partitions-form', el);
        af.count.min = String(parts.length + 1);
        if (!af.count.value && document.activeElement !== af.count) af.count.placeholder = String(parts.length + 1);
        if (first && (params.has('offset') || params.has('timestamp') || params.has('partition'))) fetchMessages();
      },
    };
  }
  function payload(v, encoding) {
    if (v == null) return '<span class="dim">null</span>';
    if (v === '') return '<span class="dim">(empty)</span>';
    return '<div class="cell-text clip" title="click to expand">' + esc(v) + '</div>' + (encoding === 'base64' ? '<span class="badge enc">base64</span>' : '');
  }
  document.addEventListener('click', (e) => {
    const t = e.target.closest && e.target.closest('.cell-text');
    if (t) t.classList.toggle('clip');
  });

  function groupsPage(params) {
    let el;
    const limit = 100;
    const offset = Math.max(0, Number(params.get('offset')) || 0);
    return {
      nav: 'groups',
      title: 'Consumer groups',
      mount(root) {
        el = root;
        root.innerHTML = '<div class="panel"><div class="panel-head"><h2>Consumer groups <span class="hint" id="groups-hint"></span></h2></div><div class="table-wrap" id="groups-table"></div></div>';
      },
      async refresh() {
        const r = await get('/api/v1/groups?offset=' + offset + '&limit=' + limit);
        setHTML($('#groups-hint', el), exact(r.total) + (r.total === 1 ? ' group' : ' groups'));
        const end = offset + r.groups.length;
        setHTML($('#groups-table', el),
          '<table id="groups"><thead><tr><th>Group</th><th>State</th><th>Protocol type</th><th class="num">Members</th><th>Coordinator</th><th class="num">Lag</th></tr></thead><tbody>' +
          (r.groups.length ? r.groups.map((g) => '<tr><td>' + groupLink(g.group) + '</td><td>' + stateBadge(g.state) + '</td><td>' + (g.protocol_type ? esc(g.protocol_type) : '<span class="dim">—</span>') +
            '</td><td class="num">' + esc(g.members) + '</td><td>' + agentRef(g.coordinator) + '</td><td class="num">' + lagCell(g.lag) + '</td></tr>').join('')
            : emptyRow(6, 'No consumer groups.')) + '</tbody></table>' +
          (r.total > limit ? '<div class="pager"><span>' + exact(offset + 1) + '–' + exact(end) + ' of ' + exact(r.total) + '</span>' +
            (offset > 0 ? '<a class="btn" href="#/groups?offset=' + Math.max(0, offset - limit) + '">← Previous</a>' : '') +
            (end < r.total ? '<a class="btn" href="#/groups?offset=' + end + '">Next →</a>' : '') + '</div>' : ''));
      },
    };
  }

  function groupPage(id) {
    let el, group = null, preview = null;
    function resetRequest(execute) {
      const f = $('#reset-form', el);
      const body = { topic: f.topic.value.trim(), to: f.to.value, execute: execute };
      const parts = f.partitions.value.trim();
      if (parts && parts !== 'all') {
        body.partitions = parts.split(/[\s,]+/).filter(Boolean).map(Number);
        if (body.partitions.some((n) => !Number.isInteger(n) || n < 0)) throw new ApiError(0, 'INVALID_REQUEST', 'partitions: a comma-separated list of partition numbers, or empty for all');
      }
      if (body.to === 'offset') body.offset = Number(f.offset.value);
      if (body.to === 'timestamp') {
        const t = new Date(f.time.value).getTime();
        if (isNaN(t)) throw new ApiError(0, 'INVALID_REQUEST', 'choose a date and time to reset to');
        body.timestamp = t;
      }
      return body;
    }
    function drawPreview(res) {
      setHTML($('#reset-result', el),
        '<div style="margin-top:14px"><div class="note" style="margin-bottom:6px">' + (res.executed ? '<span class="badge ok">executed</span> The offsets below are now committed.' : '<span class="badge accent">preview</span> Nothing changed yet: press Execute to commit these offsets.') + '</div>' +
        '<table id="reset-preview" style="border:1px solid var(--line)"><thead><tr><th>Topic</th><th class="num">Partition</th><th class="num">Current offset</th><th class="num">New offset</th><th class="num">Change</th></tr></thead><tbody>' +
        (res.offsets.length ? res.offsets.map((o) => {
          const d = o.current_offset == null ? null : o.new_offset - o.current_offset;
          return '<tr><td>' + esc(o.topic) + '</td><td class="num">' + esc(o.partition) + '</td><td class="num">' + (o.current_offset == null ? '<span class="dim">none</span>' : esc(o.current_offset)) +
            '</td><td class="num">' + esc(o.new_offset) + '</td><td class="num">' + (d == null ? '<span class="dim">—</span>' : (d > 0 ? '+' : '') + esc(exact(d))) + '</td></tr>';
        }).join('') : emptyRow(5, 'No partitions selected.')) + '</tbody></table></div>');
    }
    return {
      nav: 'groups',
      title: id,
      crumbs: '<a href="#/groups">Consumer groups</a> /',
      mount(root) {
        el = root;
        root.innerHTML =
          '<div class="cards" id="group-cards"></div>' +
          '<div class="panel"><div class="panel-head"><h2>Members</h2><span class="hint" id="members-hint"></span></div><div class="table-wrap" id="group-members"></div></div>' +
          '<div class="panel"><div class="panel-head"><h2>Offsets and lag</h2><span class="hint">lag = log end − committed offset</span></div><div class="table-wrap" id="group-offsets"></div></div>' +
          '<div class="panel write" id="group-admin"><div class="panel-head"><h2>Reset offsets</h2><span class="hint">only for groups without members</span></div><div class="panel-body">' +
          '<div class="muted-box" id="group-busy" style="display:none">This group has active members. Stop its consumers to reset offsets or delete the group.</div>' +
          '<div id="group-tools">' +
          '<form id="reset-form" class="form-row" autocomplete="off">' +
          '<label class="field grow"><span>Topic</span><input name="topic" list="group-topics" required></label><datalist id="group-topics"></datalist>' +
          '<label class="field"><span>Partitions <em>(empty = all)</em></span><input name="partitions" placeholder="all" style="width:140px"></label>' +
          '<label class="field"><span>Reset to</span><select name="to"><option value="earliest">earliest</option><option value="latest">latest</option><option value="offset">offset</option><option value="timestamp">timestamp</option></select></label>' +
          '<label class="field" data-for="offset"><span>Offset</span><input name="offset" type="number" min="0" value="0"></label>' +
          '<label class="field" data-for="timestamp"><span>Time <em>(local)</em></span><input name="time" type="datetime-local" step="1"></label>' +
          '<button type="submit" id="reset-preview-btn">Preview</button><button type="button" class="primary" id="reset-execute" disabled>Execute reset</button></form>' +
          '<div id="reset-result"></div>' +
          '<div style="margin-top:18px;padding-top:14px;border-top:1px solid var(--line-2)" class="actions"><button type="button" class="danger" id="delete-group">Delete group…</button><span class="note">Removes the group and its committed offsets.</span></div>' +
          '</div></div></div>';
        const f = $('#reset-form', el);
        const showInputs = () => $$('[data-for]', f).forEach((x) => { x.style.display = x.dataset.for === f.to.value ? '' : 'none'; });
        const invalidate = () => { preview = null; $('#reset-execute', el).disabled = true; setHTML($('#reset-result', el), ''); };
        f.to.addEventListener('change', showInputs);
        f.addEventListener('input', invalidate);
        f.addEventListener('change', invalidate);
        showInputs();
        f.addEventListener('submit', async (e) => {
          e.preventDefault();
          let body;
          const res = await action('Previewing the reset', $('#reset-preview-btn', el), () => { body = resetRequest(false); return api('POST', '/api/v1/groups/' + enc(id) + '/reset-offsets', body); });
          if (res) { preview = JSON.stringify(body); drawPreview(res); $('#reset-execute', el).disabled = false; }
        });
        $('#reset-execute', el).addEventListener('click', async (e) => {
          const body = resetRequest(false);
          if (JSON.stringify(body) !== preview) { invalidate(); return; }
          body.execute = true;
          const res = await action('Resetting offsets', e.target, () => api('POST', '/api/v1/groups/' + enc(id) + '/reset-offsets', body));
          if (res) { drawPreview(res); e.target.disabled = true; preview = null; infoBanner('Offsets of group <b>' + esc(id) + '</b> reset.'); tick(true); }
        });
        $('#delete-group', el).addEventListener('click', async (e) => {
          if (!window.confirm('Delete consumer group "' + id + '" and its committed offsets?')) return;
          const res = await action('Deleting the group', e.target, () => api('DELETE', '/api/v1/groups/' + enc(id)));
          if (res) { flash = ['info', 'Consumer group <b>' + esc(id) + '</b> deleted.']; location.hash = '#/groups'; }
        });
      },
      async refresh() {
        group = await get('/api/v1/groups/' + enc(id));
        const g = group;
        setHTML($('#group-cards', el),
          card('State', stateBadge(g.state), g.protocol ? 'protocol ' + esc(g.protocol) : (g.protocol_type ? esc(g.protocol_type) : '&nbsp;')) +
          card('Members', fmtCount(g.members.length), g.protocol_type ? 'protocol type ' + esc(g.protocol_type) : '&nbsp;') +
          card('Coordinator', g.coordinator == null ? '—' : esc(g.coordinator), g.coordinator != null && state.cluster && g.coordinator === state.cluster.agent_id ? 'this agent' : 'agent') +
          card('Lag', '<span class="' + (g.lag > 0 ? 'lag-pos' : '') + '" title="' + esc(exact(g.lag)) + ' messages">' + fmtCount(g.lag) + '</span>' + unit('msgs'),
            g.offsets.length + ' partition' + (g.offsets.length === 1 ? '' : 's') + ' committed'));
        setHTML($('#members-hint', el), g.members.length + (g.members.length === 1 ? ' member' : ' members'));
        setHTML($('#group-members', el),
          '<table id="members-table"><thead><tr><th>Member</th><th>Client id</th><th>Host</th><th>Assignment</th></tr></thead><tbody>' +
          (g.members.length ? g.members.map((m) => '<tr><td class="mono">' + esc(m.member_id) + '</td><td>' + esc(m.client_id) + '</td><td class="mono">' + esc(m.client_host) +
            '</td><td>' + ((m.assignments || []).map((a) => '<span class="hdr"><b>' + esc(a.topic) + '</b> ' + esc(a.partitions.join(', ')) + '</span>').join('') || '<span class="dim">nothing</span>') + '</td></tr>').join('')
            : emptyRow(4, 'No active members.')) + '</tbody></table>');
        const offs = g.offsets.slice().sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
        setHTML($('#group-offsets', el),
          '<table id="offsets-table"><thead><tr><th>Topic</th><th class="num">Partition</th><th class="num">Committed offset</th><th class="num">Log end</th><th class="num">Lag</th><th>Member</th></tr></thead><tbody>' +
          (offs.length ? offs.map((o) => '<tr><td>' + topicLink(o.topic) + '</td><td class="num">' + esc(o.partition) + '</td><td class="num">' + (o.committed_offset == null ? '<span class="dim">none</span>' : esc(o.committed_offset)) +
            '</td><td class="num">' + esc(o.log_end_offset) + '</td><td class="num">' + lagCell(o.lag) + '</td><td class="mono">' + (o.member_id ? esc(o.member_id) : '<span class="dim">—</span>') + '</td></tr>').join('')
            : emptyRow(6, 'No committed offsets.')) + '</tbody></table>');
        const empty = g.members.length === 0;
        $('#group-busy', el).style.display = empty ? 'none' : '';
        $('#group-tools', el).style.display = empty ? '' : 'none';
        const topics = Array.from(new Set(offs.map((o) => o.topic)));
        setHTML($('#group-topics', el), topics.map((t) => '<option value="' + esc(t) + '">').join(''));
        const f = $('#reset-form', el);
        if (!f.topic.value && topics.length && document.activeElement !== f.topic) f.topic.value = topics[0];
      },
    };
  }

  function consolePage(params) {
    let el;
    const sent = [];
    function addHeaderRow(k, v) {
      const row = document.createElement('div');
      row.className = 'hrow';
      row.innerHTML = '<input placeholder="header name" data-h="key" value="' + esc(k || '') + '"><input placeholder="value" data-h="value" value="' + esc(v || '') + '"><button type="button" title="Remove header">×</button>';
      row.querySelector('button').onclick = () => row.remove();
      $('#headers-list', el).appendChild(row);
    }
    return {
      nav: 'console',
      title: 'Console',
      mount(root) {
        el = root;
        root.innerHTML =
          '<div class="muted-box ro-only">This agent\'s API is read-only: sending messages is disabled.</div>' +
          '<div class="panel write" id="produce-panel"><div class="panel-head"><h2>Send a message</h2><span class="hint">Ctrl+Enter sends</span></div><div class="panel-body">' +
          '<form id="produce-form" autocomplete="off">' +
          '<div class="form-row">' +
          '<label class="field grow"><span>Topic</span><input name="topic" list="topic-names" required value="' + esc(params.get('topic') || '') + '"></label><datalist id="topic-names"></datalist>' +
          '<label class="field"><span>Partition <em>(optional)</em></span><input name="partition" type="number" min="0" placeholder="auto"></label>' +
          '<label class="field grow"><span>Key <em>(optional)</em></span><input name="key" placeholder="no key"></label>' +
          '</div>' +
          '<div class="form-row" style="margin-top:12px"><label class="field wide"><span>Value</span><textarea name="value" rows="5" placeholder="{&quot;hello&quot;: &quot;world&quot;}"></textarea></label></div>' +
          '<div style="margin-top:12px"><div class="field"><span>Headers <em>(optional)</em></span></div><div class="headers-list" id="headers-list" style="margin-top:4px"></div>' +
          '<button type="button" class="link" id="add-header" style="margin-top:6px">+ Add header</button></div>' +
          '<div class="actions" style="margin-top:14px"><button class="primary" type="submit" id="send-btn">Send message</button><span class="note">Value and key are sent as UTF-8 text.</span></div>' +
          '</form><div id="produce-result"></div></div></div>' +
          '<div class="panel write"><div class="panel-head"><h2>Sent from this page</h2></div><div class="table-wrap" id="sent"></div></div>';
        const f = $('#produce-form', el);
        $('#add-header', el).onclick = () => addHeaderRow();
        f.value.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); f.requestSubmit(); } });
        const drawSent = () => setHTML($('#sent', el),
          '<table id="sent-table"><thead><tr><th>Sent</th><th>Topic</th><th class="num">Partition</th><th class="num">Offset</th><th>Key</th><th>Value</th><th></th></tr></thead><tbody>' +
          (sent.length ? sent.map((s) => '<tr><td class="nowrap mono">' + esc(fmtTime(s.timestamp)) + '</td><td>' + topicLink(s.topic) + '</td><td class="num">' + esc(s.partition) + '</td><td class="num">' + esc(s.offset) +
            '</td><td class="val">' + payload(s.key) + '</td><td class="val">' + payload(s.value) + '</td><td class="num"><a href="' + esc(viewLink(s)) + '">view</a></td></tr>').join('')
            : emptyRow(7, 'Nothing sent yet.')) + '</tbody></table>');
        drawSent();
        f.addEventListener('submit', async (e) => {
          e.preventDefault();
          const body = { topic: f.topic.value.trim(), value: f.value.value };
          if (f.partition.value !== '') body.partition = Number(f.partition.value);
          if (f.key.value !== '') body.key = f.key.value;
          const headers = {};
          $$('#headers-list .hrow', el).forEach((r) => {
            const k = r.querySelector('[data-h=key]').value;
            if (k) headers[k] = r.querySelector('[data-h=value]').value;
          });
          if (Object.keys(headers).length) body.headers = headers;
          const res = await action('Sending the message', $('#send-btn', el), () => api('POST', '/api/v1/produce', body));
          if (res) {
            const s = Object.assign({ key: body.key, value: body.value }, res);
            s.timestamp = s.timestamp == null || s.timestamp < 0 ? Date.now() : s.timestamp;
            sent.unshift(s);
            if (sent.length > 50) sent.pop();
            setHTML($('#produce-result', el),
              '<div class="result" id="produce-ok">Sent to <b>' + esc(res.topic) + '</b> partition <b id="produced-partition">' + esc(res.partition) + '</b> at offset <b id="produced-offset">' + esc(res.offset) + '</b>' +
              ' · <a href="' + esc(viewLink(res)) + '">view in the message browser →</a></div>');
            drawSent();
          }
        });
      },
      async refresh() {
        // topic names for the datalist (a datalist update never disturbs what is typed)
        if (!document.body.classList.contains('read-only')) {
          const topics = await get('/api/v1/topics');
          setHTML($('#topic-names', el), topics.map((t) => '<option value="' + esc(t.name) + '">').join(''));
        }
      },
    };
  }
  const viewLink = (s) => '#/topics/' + enc(s.topic) + '?partition=' + enc(s.partition) + '&offset=' + enc(s.offset);

  // ---- router and refresh loop ---------------------------------------------------------------
  const routes = [
    [/^\/?$/, () => dashboardPage()],
    [/^\/topics\/?$/, () => topicsPage()],
    [/^\/topics\/([^/]+)\/?$/, (m, p) => topicPage(decodeURIComponent(m[1]), p)],
    [/^\/groups\/?$/, (m, p) => groupsPage(p)],
    [/^\/groups\/([^/]+)\/?$/, (m, p) => groupPage(decodeURIComponent(m[1]), p)],
    [/^\/agents\/?$/, () => agentsPage()],
    [/^\/console\/?$/, (m, p) => consolePage(p)],
  ];

  let page = null;
  let gen = 0;
  let busyGen = -1;

  function notFoundPage(path) {
    return {
      nav: '', title: 'Not found',
      mount(root) { root.innerHTML = '<div class="muted-box">No page at <span class="mono">' + esc(path) + '</span>. <a href="#/">Go to the dashboard</a>.</div>'; },
    };
  }

  function navigate() {
    const raw = location.hash.replace(/^#/, '') || '/';
    const qi = raw.indexOf('?');
    const path = qi < 0 ? raw : raw.slice(0, qi);
    const params = new URLSearchParams(qi < 0 ? '' : raw.slice(qi + 1));
    gen++;
    page = null;
    for (const [re, make] of routes) {
      const m = path.match(re);
      if (m) {
        try { page = make(m, params); } catch (e) { page = notFoundPage(path); }
        break;
      }
    }
    if (!page) page = notFoundPage(path);
    clearBanners();
    if (flash) { banner('flash', flash[0], flash[1]); flash = null; }
    $$('#nav a').forEach((a) => a.classList.toggle('active', a.dataset.nav === page.nav));
    $('#title').textContent = page.title;
    $('#crumbs').innerHTML = page.crumbs || '&nbsp;';
    document.title = page.title + ' · StreamHouse';
    const content = $('#content');
    content.innerHTML = '';
    content._html = undefined;
    page.mount(content);
    tick(true);
  }

  // true while the user is typing in a form: the background refresh waits
  function editing() {
    const a = document.activeElement;
    return !!(a && a.closest && a.closest('form') && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName));
  }

  function setLive(kind, text) {
    const el = $('#live');
    el.className = 'live ' + kind;
    $('#live-text').textContent = text;
  }

  async function tick(force) {
    if (busyGen === gen) return;
    if (!force && document.hidden) return;
    if (!force && editing()) { setLive('paused', 'paused while editing'); return; }
    const g = gen;
    busyGen = g;
    try {
      await refreshCluster();
      if (g === gen && page && page.refresh) await page.refresh();
      if (g === gen) {
        clearBanner('refresh');
        setLive('', 'live · updated ' + new Date().toLocaleTimeString());
      }
    } catch (e) {
      if (g === gen) {
        errorBanner('refresh', e, 'Refreshing');
        setLive('down', e.status === 0 || e.code === 'NETWORK_ERROR' ? 'agent unreachable' : 'refresh failed');
      }
    } finally {
      if (busyGen === g) busyGen = -1;
    }
  }

  // hide write controls until the first /api/v1/cluster answer says whether writes are allowed
  document.body.classList.add('read-only');
  window.addEventListener('hashchange', navigate);
  setInterval(() => tick(false), REFRESH_MS);
  navigate();

  // for tests and debugging
  window.streamhouseConsole = { state: state, refresh: () => tick(true), fmtCount: fmtCount, fmtBytes: fmtBytes, fmtAgo: fmtAgo };
})();
