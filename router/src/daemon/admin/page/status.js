// ganglion's status page. Served by the router from its own source (no build step, nothing
// fetched from elsewhere). It asks the admin API every POLL_MS and keeps the message history
// for the chart in this tab's memory. Every value from the router is put on the page as text
// (textContent, never HTML), and the CSP's Trusted Types setting makes any HTML sink throw.
'use strict';
(() => {
  const POLL_MS = 2000;
  const HISTORY_MS = 10 * 60 * 1000;
  const FETCH_TIMEOUT_MS = 5000;
  const TOKEN_KEY = 'ganglion.admin.token';
  const ENDPOINTS_PATH = '/endpoints?state=failing&sort=oldest&limit=50';
  const SERIES = [
    { id: 'accepted', metric: 'ganglion_accepted_total', label: 'accepted', cls: 's-accepted' },
    { id: 'rejected', metric: 'ganglion_rejected_total', label: 'rejected (AR)', cls: 's-rejected' },
    { id: 'unreadable', metric: 'ganglion_unreadable_total', label: 'unreadable (AE)', cls: 's-unreadable' },
    { id: 'dead-lettered', metric: 'ganglion_dead_lettered_total', label: 'dead-lettered', cls: 's-dead' },
    { id: 'delivered', metric: 'ganglion_delivered_total', label: 'delivered', cls: 's-delivered' },
  ];
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const $ = (id) => document.getElementById(id);

  /** An element with text children only: strings become text nodes, never markup. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === 'class') node.className = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) node.append(child instanceof Node ? child : String(child ?? ''));
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- the token: from the address's fragment or the form, kept for this tab only ---------

  const printable = (t) => /^[\x21-\x7e]{1,512}$/.test(t);

  function tokenFromAddress() {
    const match = /^#token=(.*)$/s.exec(location.hash);
    if (!match) return;
    let token = '';
    try {
      token = decodeURIComponent(match[1]).trim();
    } catch {
      token = '';
    }
    if (printable(token)) sessionStorage.setItem(TOKEN_KEY, token);
    // Out of the address bar (and this history entry) whether or not it was usable.
    history.replaceState(null, '', location.pathname + location.search);
  }

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  function showTokenPanel(why) {
    $('token-panel').hidden = false;
    $('forget').hidden = token() === null;
    if (why) $('token-why').textContent = why;
  }

  function forgetToken(why) {
    sessionStorage.removeItem(TOKEN_KEY);
    showTokenPanel(why);
  }

  // --- asking the router -------------------------------------------------------------------

  /** `{status, body}`; throws when the router cannot be reached or does not answer in time. */
  async function get(path, withToken) {
    const headers = {};
    if (withToken) {
      const t = token();
      if (t === null) return { status: 0, body: '' };
      headers.Authorization = `Bearer ${t}`;
    }
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), FETCH_TIMEOUT_MS);
    try {
      const response = await fetch(path, {
        headers, cache: 'no-store', credentials: 'omit', redirect: 'error', signal: abort.signal,
      });
      return { status: response.status, body: await response.text() };
    } finally {
      clearTimeout(timer);
    }
  }

  /** The first line of a refusal, for a person. */
  const firstLine = (body) => String(body).split('\n', 1)[0].slice(0, 300);

  /** What to say for an answer that is not 200 from an API that needs the token. */
  function refusal(answer) {
    if (answer.status === 0) return 'needs the admin token';
    if (answer.status === 401) {
      forgetToken('The router refused the token this tab had (a wrong or rotated token). Paste the current one.');
      return 'the token was refused';
    }
    if (answer.status === 403) {
      return 'refused: open this page at the admin address itself (127.0.0.1 or localhost with the admin port), not through another name or port';
    }
    return `HTTP ${answer.status}: ${firstLine(answer.body)}`;
  }

  // --- formatting ----------------------------------------------------------------------------

  const number = (n) => (typeof n === 'number' && Number.isFinite(n) ? n.toLocaleString('en-GB') : '–');
  const rate = (r) => (r === null ? '–' : `${r < 10 ? r.toFixed(1) : Math.round(r).toLocaleString('en-GB')}/s`);

  function duration(ms) {
    if (typeof ms !== 'number' || !Number.isFinite(ms)) return '–';
    const s = Math.floor(ms / 1000);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }

  const clock = (date) => date.toLocaleTimeString('en-GB', { hour12: false });

  // --- readiness -----------------------------------------------------------------------------

  function showReady(result) {
    const box = $('ready-box');
    const reasons = $('reasons');
    reasons.replaceChildren();
    let state = 'unknown';
    let text = 'unknown';
    if (result.status === 'rejected') {
      state = 'unreachable';
      text = 'unreachable';
    } else if (result.value.status === 200) {
      state = 'ready';
      text = 'ready';
    } else if (result.value.status === 503) {
      state = 'not-ready';
      text = 'not ready';
      for (const line of result.value.body.split('\n').slice(1)) {
        if (line.trim()) reasons.append(el('li', null, line.trim()));
      }
    } else {
      text = `unknown (HTTP ${result.value.status})`;
    }
    reasons.hidden = reasons.childElementCount === 0;
    box.className = `badge ${state}`;
    $('ready').textContent = text;
    document.title = `${text} · ganglion`;
  }

  // --- messages: counters, history, chart ----------------------------------------------------

  /** Samples `{at, values}` of /metrics, oldest first, at most HISTORY_MS old. */
  const samples = [];

  /** Prometheus text to `{name: value}` for the unlabelled series. */
  function parseMetrics(text) {
    const values = {};
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#') || line.includes('{')) continue;
      const [name, value] = line.trim().split(/\s+/);
      const n = Number(value);
      if (name && Number.isFinite(n)) values[name] = n;
    }
    return values;
  }

  /** Per-second rates between consecutive samples (a counter that went down: a restart). */
  function rates(metric) {
    const points = [];
    for (let i = 1; i < samples.length; i += 1) {
      const a = samples[i - 1];
      const b = samples[i];
      const seconds = (b.at - a.at) / 1000;
      const was = a.values[metric];
      const is = b.values[metric];
      if (seconds <= 0 || was === undefined || is === undefined) continue;
      const delta = is >= was ? is - was : is;
      points.push({ at: b.at, rate: delta / seconds });
    }
    return points;
  }

  function showMessages(result) {
    if (result.status === 'rejected' || result.value.status !== 200) return false;
    const now = Date.now();
    const values = parseMetrics(result.value.body);
    samples.push({ at: now, values });
    while (samples.length > 2 && now - samples[0].at > HISTORY_MS) samples.shift();
    const first = samples[0];
    const span = Math.max(1, Math.round((now - first.at) / 60000));
    $('window-head').textContent = samples.length > 1 ? `Last ${span} min` : 'Last minutes';
    const rows = [];
    const legend = [];
    for (const series of SERIES) {
      const total = values[series.metric];
      const before = first.values[series.metric];
      const recent = total !== undefined && before !== undefined && total >= before ? total - before : null;
      const latest = rates(series.metric).at(-1);
      const now = latest ? latest.rate : null;
      rows.push(el('tr', null,
        el('td', null, el('span', { class: `swatch ${series.cls}` }), series.label),
        el('td', { class: 'n', id: `count-${series.id}` }, number(total)),
        el('td', { class: 'n' }, number(recent)),
        el('td', { class: 'n', id: `rate-${series.id}` }, rate(now))));
      legend.push(el('span', null, el('span', { class: `swatch ${series.cls}` }), `${series.label} ${rate(now)}`));
    }
    $('counts').replaceChildren(...rows);
    $('legend').replaceChildren(...legend);
    $('queued').textContent = number(values.ganglion_queued);
    $('connections').textContent = number(values.ganglion_egress_connections);
    $('retries').textContent = number(values.ganglion_retries_total);
    drawChart(now);
    return true;
  }

  /** The smallest of 1, 2, 5 × 10^n at or above `x`. */
  function niceCeiling(x) {
    if (!(x > 0)) return 1;
    const power = 10 ** Math.floor(Math.log10(x));
    for (const step of [1, 2, 5, 10]) if (step * power >= x) return step * power;
    return 10 * power;
  }

  function drawChart(now) {
    const chart = $('chart');
    const [W, H] = [640, 220];
    const left = 48;
    const right = 8;
    const top = 10;
    const bottom = 24;
    const plotW = W - left - right;
    const plotH = H - top - bottom;
    const all = SERIES.map((s) => ({ series: s, points: rates(s.metric) }));
    const peak = Math.max(0, ...all.flatMap((a) => a.points.map((p) => p.rate)));
    const max = niceCeiling(peak);
    const x = (at) => left + plotW * (1 - (now - at) / HISTORY_MS);
    const y = (r) => top + plotH * (1 - r / max);
    const nodes = [];
    for (const fraction of [0, 0.5, 1]) {
      const value = max * fraction;
      nodes.push(svg('line', { class: 'axis', x1: left, x2: W - right, y1: y(value), y2: y(value) }));
      nodes.push(svg('text', { x: left - 6, y: y(value) + 4, 'text-anchor': 'end' },
        `${Number(value.toPrecision(2))}/s`));
    }
    for (const minutes of [10, 5, 0]) {
      const at = now - minutes * 60000;
      const anchor = minutes === 10 ? 'start' : minutes === 0 ? 'end' : 'middle';
      nodes.push(svg('text', { x: x(at), y: H - 6, 'text-anchor': anchor },
        minutes === 0 ? 'now' : `−${minutes} min`));
    }
    for (const { series, points } of all) {
      if (points.length === 0) continue;
      const list = points.map((p) => `${x(p.at).toFixed(1)},${y(p.rate).toFixed(1)}`);
      if (points.length === 1) list.unshift(`${(x(points[0].at) - 2).toFixed(1)},${y(points[0].rate).toFixed(1)}`);
      nodes.push(svg('polyline', { class: series.cls, points: list.join(' ') }));
      const last = points[points.length - 1];
      nodes.push(svg('circle', { class: series.cls, cx: x(last.at), cy: y(last.rate), r: 2.5 }));
    }
    chart.replaceChildren(...nodes);
  }

  // --- endpoints in trouble ------------------------------------------------------------------

  function state(text, cls) {
    return el('span', { class: `state ${cls}` }, text);
  }

  function endpointRow(e) {
    const circuit = e.circuit === 'open'
      ? el('span', null, state('open', 'open'), el('div', { class: 'small' }, e.circuit_open_since ? `since ${e.circuit_open_since}` : ''))
      : state(String(e.circuit ?? '–'), 'closed');
    const queue = el('span', null, `${number(e.queued)} / ${number(e.queue_limit)}`,
      e.held_for_replay ? el('div', { class: 'small' }, `${number(e.held_for_replay)} held for replay`) : '');
    const error = e.last_error
      ? el('div', { class: 'error-text' }, String(e.last_error.error ?? ''),
        el('div', { class: 'small' }, `${duration(e.last_error.age_ms)} ago`))
      : '–';
    return el('tr', { 'data-endpoint': String(e.name) },
      el('td', null, String(e.name), el('div', { class: 'small' }, `${e.protocol ?? ''} ${e.address ?? ''}`)),
      el('td', { class: 'n' }, String(e.owner_shard ?? '–')),
      el('td', { class: 'connection' }, state(String(e.connection ?? '–'), String(e.connection ?? ''))),
      el('td', { class: 'circuit' }, circuit),
      el('td', { class: 'n queued' }, queue),
      el('td', { class: 'n' }, duration(e.oldest_queued_age_ms)),
      el('td', { class: 'n' }, number(e.delivered)),
      el('td', { class: 'n' }, number(e.retried)),
      el('td', { class: 'n' }, number(e.dead_lettered)),
      el('td', null, error));
  }

  function showEndpoints(result) {
    const summary = $('endpoints-summary');
    if (result.status === 'rejected') return;
    const answer = result.value;
    if (answer.status !== 200) {
      summary.textContent = refusal(answer);
      $('endpoints').replaceChildren();
      return;
    }
    const listing = JSON.parse(answer.body);
    const rows = (listing.endpoints || []).map(endpointRow);
    $('endpoints').replaceChildren(...rows);
    summary.textContent = listing.total === 0
      ? 'No endpoint is down, has an open circuit or a backlog.'
      : `${number(listing.total)} endpoint${listing.total === 1 ? '' : 's'} down, with an open circuit or a backlog` +
        (listing.total > rows.length ? `; the ${rows.length} waiting longest are shown.` : ', longest wait first.');
  }

  // --- shards --------------------------------------------------------------------------------

  function showShards(result) {
    const summary = $('shards-summary');
    if (result.status === 'rejected') return;
    const answer = result.value;
    if (answer.status !== 200) {
      summary.textContent = refusal(answer);
      $('shards').replaceChildren();
      return;
    }
    const shards = JSON.parse(answer.body).shards || [];
    const n = (v) => el('td', { class: 'n' }, number(v));
    $('shards').replaceChildren(...shards.map((s) => el('tr', { 'data-shard': String(s.shard) },
      el('td', null, String(s.shard)),
      el('td', null, s.serving ? state('yes', 'yes') : state('no', 'no')),
      el('td', null, state(String(s.log), String(s.log))),
      n(s.endpoints), n(s.queued), n(s.received), n(s.accepted), n(s.rejected), n(s.unreadable),
      n(s.delivered), n(s.dead_lettered), n(s.retries))));
    const serving = shards.filter((s) => s.serving).length;
    summary.textContent = `${shards.length} shard${shards.length === 1 ? '' : 's'}, ${serving} serving.`;
  }

  // --- routes version ------------------------------------------------------------------------

  function showRoutes(result) {
    let version = '–';
    let loaded = '–';
    if (result.status === 'fulfilled' && result.value.status === 200) {
      try {
        const routes = JSON.parse(result.value.body);
        if (routes.version !== undefined && routes.version !== null) version = String(routes.version);
        if (typeof routes.loaded_at === 'string') loaded = routes.loaded_at;
        const digest = routes.files && routes.files[0] && routes.files[0].sha256;
        if (typeof digest === 'string') $('routes-version').title = `sha256 ${digest}`;
      } catch {
        // not JSON: leave the dashes
      }
    }
    $('routes-version').textContent = version;
    $('routes-loaded').textContent = loaded;
  }

  // --- the loop ------------------------------------------------------------------------------

  let lastAnswer = null;
  /** A router without /routes (older than the page) is asked again only once a minute. */
  let routesMissingUntil = 0;
  let routesShown = { status: 0, body: '' };

  async function routesAnswer(withToken) {
    if (!withToken) return { status: 0, body: '' };
    if (Date.now() < routesMissingUntil) return routesShown;
    const answer = await get('/routes', true);
    if (answer.status === 404) routesMissingUntil = Date.now() + 60_000;
    routesShown = answer;
    return answer;
  }

  async function poll() {
    try {
      const withToken = token() !== null;
      const [ready, metrics, shards, endpoints, routes] = await Promise.allSettled([
        get('/readyz', false),
        get('/metrics', false),
        get('/shards', withToken),
        get(ENDPOINTS_PATH, withToken),
        routesAnswer(withToken),
      ]);
      showReady(ready);
      const answered = showMessages(metrics);
      showShards(shards);
      showEndpoints(endpoints);
      showRoutes(routes);
      if (token() === null) showTokenPanel();
      else $('token-panel').hidden = true;
      $('forget').hidden = token() === null;
      const trouble = $('trouble');
      const main = document.querySelector('main');
      if (answered) {
        lastAnswer = new Date();
        $('updated').textContent = clock(lastAnswer);
        trouble.hidden = true;
        main.classList.remove('stale');
      } else {
        trouble.textContent = lastAnswer
          ? `No answer from the router since ${clock(lastAnswer)}: what is shown may be out of date.`
          : 'No answer from the router yet.';
        trouble.hidden = false;
        main.classList.add('stale');
      }
    } catch (e) {
      const trouble = $('trouble');
      trouble.textContent = `The page could not show the router's answer: ${e && e.message ? e.message : e}`;
      trouble.hidden = false;
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('token-input');
    const value = input.value.trim();
    input.value = '';
    if (!printable(value)) {
      $('token-why').textContent = 'That is not a token: it is the one line in admin.token, letters and digits.';
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, value);
    $('token-panel').hidden = true;
    $('forget').hidden = false;
  });
  $('forget').addEventListener('click', () => forgetToken());
  window.addEventListener('hashchange', tokenFromAddress);
  for (const here of document.querySelectorAll('.here')) here.textContent = location.origin;

  tokenFromAddress();
  poll();
})();
