// zeroserve console (docs/console.md). One script, no libraries, nothing fetched from outside
// the server. Every call goes to this server's API with the key the user gave (kept in session
// storage, never displayed). Live pages poll once a second at most, one request per tick.
'use strict';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);
const KEY_STORE = 'zeroserve-console-key';
const PAGES = ['deployments', 'costs', 'batches', 'playground', 'admin'];
const state = { caller: null, page: null, timer: null, tick: 0, offset: 0, limit: 50, selected: '',
                keysRequired: false, costs: null, chat: [], image: null, busy: false,
                scaleDraft: {} };  // instance counts typed but not yet applied, by deployment

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

function fmtSeconds(s) {
  if (s === null || s === undefined) return '—';
  s = Math.max(0, Math.round(s));
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
  return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
}
const fmtMoney = (x) => '$' + Number(x || 0).toFixed(4);
const fmtInt = (x) => Number(x || 0).toLocaleString('en-US');
const fmtTime = (t) => new Date(t * 1000).toLocaleString();

function toast(text, bad) {
  const t = $('toast');
  t.textContent = text;
  t.className = 'toast' + (bad ? ' bad' : '');
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 5000);
}

// An error answered by the API, with its HTTP status and OpenAI error code.
class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

function authHeaders() {
  const key = sessionStorage.getItem(KEY_STORE);
  return key ? { Authorization: 'Bearer ' + key } : {};
}

// Calls the API; resolves to the Response (ok) or rejects with an ApiError. A 401 for a
// missing or wrong key asks for a key again.
async function call(path, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = Object.assign({}, authHeaders(), opts.headers || {});
  const r = await fetch(path, opts);
  if (r.ok) return r;
  let code = null, message = r.status + ' ' + r.statusText;
  try {
    const j = await r.json();
    if (j && j.error) { code = j.error.code; message = j.error.message; }
  } catch (e) { /* not JSON */ }
  if (r.status === 401 && code === 'invalid_api_key') askForKey('That key was not accepted.');
  throw new ApiError(r.status, code, message);
}
const getJson = async (path) => (await call(path)).json();

// ---------------------------------------------------------------------------------------------
// Charts: small line and bar charts drawn on a canvas
// ---------------------------------------------------------------------------------------------

const COLORS = ['#2a62d6', '#d9822b', '#1f8a4c', '#c2372f', '#6a52b3'];

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// Draws at the canvas's own resolution (its width and height attributes); CSS scales it.
function prepareCanvas(canvas) {
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  return { ctx, w: canvas.width, h: canvas.height };
}

function axes(ctx, w, h, pad, max, unit) {
  ctx.strokeStyle = '#dfe3ea';
  ctx.fillStyle = '#687086';
  ctx.font = '11px system-ui, sans-serif';
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + (h - pad.t - pad.b) * (1 - i / 4);
    ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(w - pad.r, y); ctx.stroke();
    const v = max * i / 4;
    ctx.fillText((v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(3)) + (unit || ''), 4, y + 4);
  }
}

// series: [{label, values: [number|null]}], x: unix times of the values.
function lineChart(canvas, x, series, unit) {
  const { ctx, w, h } = prepareCanvas(canvas);
  const pad = { l: 52, r: 10, t: 18, b: 22 };
  let max = 0;
  for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
  max = niceMax(max);
  axes(ctx, w, h, pad, max, unit);
  const px = (i) => pad.l + (w - pad.l - pad.r) * (x.length > 1 ? i / (x.length - 1) : 0.5);
  const py = (v) => pad.t + (h - pad.t - pad.b) * (1 - v / max);
  ctx.fillStyle = '#687086';
  for (const i of [0, Math.floor(x.length / 2), x.length - 1]) {
    if (x[i] === undefined) continue;
    const label = new Date(x[i] * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    const tw = ctx.measureText(label).width;
    ctx.fillText(label, Math.max(pad.l - tw / 2, Math.min(px(i) - tw / 2, w - pad.r - tw)), h - 6);
  }
  let drawn = 0;
  series.forEach((s, k) => {
    ctx.strokeStyle = ctx.fillStyle = COLORS[k % COLORS.length];
    ctx.lineWidth = 1.8;
    ctx.beginPath();
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) { pen = false; return; }
      if (!pen) ctx.moveTo(px(i), py(v)); else ctx.lineTo(px(i), py(v));
      pen = true;
      drawn++;
      const isolated = (i === 0 || s.values[i - 1] === null) && (i === s.values.length - 1 || s.values[i + 1] === null);
      if (isolated) ctx.fillRect(px(i) - 2, py(v) - 2, 4, 4);
    });
    ctx.stroke();
    ctx.fillText('■ ' + s.label, pad.l + 8 + k * 110, 12);
  });
  canvas.dataset.points = String(drawn);
}

// groups: labels; series: [{label, values}] drawn side by side per group.
function barChart(canvas, groups, series, unit) {
  const { ctx, w, h } = prepareCanvas(canvas);
  const pad = { l: 60, r: 10, t: 18, b: 34 };
  let max = 0;
  for (const s of series) for (const v of s.values) if (v > max) max = v;
  max = niceMax(max);
  axes(ctx, w, h, pad, max, unit);
  const gw = (w - pad.l - pad.r) / Math.max(1, groups.length);
  const bw = Math.min(28, gw * 0.8 / series.length);
  let drawn = 0;
  groups.forEach((g, i) => {
    series.forEach((s, k) => {
      const v = s.values[i] || 0;
      const bh = (h - pad.t - pad.b) * v / max;
      ctx.fillStyle = COLORS[k % COLORS.length];
      ctx.fillRect(pad.l + gw * i + (gw - bw * series.length) / 2 + k * bw, h - pad.b - bh, bw - 2, bh);
      drawn++;
    });
    ctx.fillStyle = '#3b4356';
    const label = g.length > 18 ? g.slice(0, 17) + '…' : g;
    ctx.fillText(label, pad.l + gw * i + (gw - ctx.measureText(label).width) / 2, h - pad.b + 14);
  });
  series.forEach((s, k) => { ctx.fillStyle = COLORS[k % COLORS.length]; ctx.fillText('■ ' + s.label, pad.l + 8 + k * 110, 12); });
  canvas.dataset.points = String(drawn);
}

// ---------------------------------------------------------------------------------------------
// Navigation, key, polling
// ---------------------------------------------------------------------------------------------

function pageFromPath() {
  const m = location.pathname.match(/^\/console\/([a-z]+)/);
  return m && PAGES.includes(m[1]) ? m[1] : 'deployments';
}

function show(page, push) {
  if (push && location.pathname !== '/console/' + page) history.pushState({}, '', '/console/' + page);
  state.page = page;
  for (const p of PAGES) $('page-' + p).hidden = p !== page;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === page);
  document.title = 'zeroserve: ' + page;
  clearTimeout(state.timer);
  state.tick = 0;
  if (state.keysRequired && !sessionStorage.getItem(KEY_STORE)) return askForKey('');
  const enter = { deployments: pollDeployments, costs: loadCosts, batches: pollBatches, playground: enterPlayground, admin: enterAdmin };
  enter[page]();
}

function askForKey(message) {
  $('key-error').textContent = message || '';
  $('key-dialog').hidden = false;
  $('key-input').focus();
}

// Runs fn again `ms` after it finished (never two requests at once), while its page shows.
// The one timer belongs to the page showing: a loop of a page left behind ends here.
function again(page, fn, ms) {
  if (state.page !== page) return;
  clearTimeout(state.timer);
  state.timer = setTimeout(() => { if (state.page === page) fn(); }, ms || 1000);
}

function updateWho() {
  const c = state.caller;
  if (!c) return;
  const text = !c.keys_required ? 'open API (no keys configured)' : 'key ' + (c.key_name || '?') + (c.admin ? ' · admin' : ' · not an admin');
  $('who').textContent = text;
}

// ---------------------------------------------------------------------------------------------
// Deployments
// ---------------------------------------------------------------------------------------------

function statusQuery() {
  const p = new URLSearchParams({ offset: state.offset, limit: state.limit });
  const q = $('dep-filter').value.trim();
  if (q) p.set('q', q);
  if ($('dep-state').value) p.set('state', $('dep-state').value);
  return '/console/api/status?' + p.toString();
}

async function pollDeployments() {
  try {
    // One request per tick: the charts every 10th, the table on the others.
    if (state.tick % 10 === 1) await refreshCharts();
    else renderDeployments(await getJson(statusQuery()));
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) toast(e.message, true);
  }
  state.tick++;
  again('deployments', pollDeployments);
}

function renderDeployments(s) {
  state.caller = s.caller;
  updateWho();
  const sum = s.summary;
  const phases = Object.entries(sum.instances).map(([k, v]) => v + ' ' + k).join(', ') || 'none';
  $('summary').replaceChildren(
    el('div', { class: 'card' }, el('div', { class: 'num', id: 'sum-deployments' }, fmtInt(sum.deployments)), el('div', { class: 'label' }, 'deployments')),
    el('div', { class: 'card' }, el('div', { class: 'num', id: 'sum-instances' }, phases), el('div', { class: 'label' }, 'instances')),
    el('div', { class: 'card' }, el('div', { class: 'num' }, fmtInt(sum.queued)), el('div', { class: 'label' }, 'queued')),
    el('div', { class: 'card' }, el('div', { class: 'num' }, fmtInt(sum.in_flight)), el('div', { class: 'label' }, 'in flight')),
    el('div', { class: 'card' }, el('div', { class: 'num' }, fmtInt(sum.cold_starts)), el('div', { class: 'label' }, 'cold starts')));
  const admin = s.caller.admin;
  const rows = s.deployments.map((d) => {
    const draft = state.scaleDraft[d.name];
    const scale = el('input', { type: 'number', min: 0, max: d.max_instances, value: draft !== undefined ? draft : d.min_instances,
                                class: 'scale-input', 'aria-label': 'instances for ' + d.name,
                                oninput: (e) => { state.scaleDraft[d.name] = e.target.value; } });
    const adminTitle = admin ? null : 'needs an admin key';
    return el('tr', { 'data-deployment': d.name, class: d.name === state.selected ? 'selected' : null },
      el('td', {}, el('a', { class: 'dep', onclick: () => selectDeployment(d.name) }, d.name)),
      el('td', {}, el('span', { class: 'badge ' + d.state, 'data-field': 'state' }, d.state),
        d.pending_reason ? el('span', { class: 'pending', 'data-field': 'pending' }, ' pending in Slurm: ' + d.pending_reason) : ''),
      el('td', { 'data-field': 'instances' }, d.instances.length ? d.instances.map((i) =>
        el('span', { class: 'badge ' + i.phase, title: i.id + ', up ' + fmtSeconds(i.age_s), 'data-phase': i.phase }, i.phase)) : '0'),
      el('td', { class: 'num' }, d.queued.interactive + ' / ' + d.queued.batch),
      el('td', { class: 'num' }, String(d.in_flight)),
      el('td', { class: 'num', 'data-field': 'cold_starts', title: d.wakes ? d.wakes + ' wakes from sleep' : null }, String(d.cold_starts)),
      el('td', { 'data-field': 'scale_to_zero' }, d.scale_to_zero_in_s === null ? (d.keep_alive_s === null ? 'never' : '—')
                                                                                 : fmtSeconds(d.scale_to_zero_in_s)),
      el('td', {},
        el('button', { type: 'button', class: 'small', 'data-action': 'prewarm', disabled: !admin, title: adminTitle,
                       onclick: () => adminAction(d.name, 'prewarm', '') }, 'Pre-warm'), ' ',
        scale, ' ',
        el('button', { type: 'button', class: 'small', 'data-action': 'scale', disabled: !admin, title: adminTitle,
                       onclick: () => { delete state.scaleDraft[d.name];
                                        adminAction(d.name, 'scale', JSON.stringify({ instances: Number(scale.value) })); } }, 'Scale')));
  });
  // The rows are rebuilt every second: a scale input being typed in keeps its text (scaleDraft)
  // and gets the focus back.
  const focused = document.activeElement;
  const typing = focused && focused.classList.contains('scale-input') ? focused.closest('tr').dataset.deployment : null;
  $('dep-table').tBodies[0].replaceChildren(...rows);
  if (typing !== null) {
    const input = $('dep-table').querySelector('tr[data-deployment="' + CSS.escape(typing) + '"] .scale-input');
    if (input) input.focus();
  }
  const from = s.matched ? s.offset + 1 : 0, to = Math.min(s.offset + s.limit, s.matched);
  $('dep-range').textContent = from + '–' + to + ' of ' + fmtInt(s.matched) + (s.matched !== s.total ? ' (of ' + fmtInt(s.total) + ')' : '');
  $('dep-prev').disabled = s.offset === 0;
  $('dep-next').disabled = to >= s.matched;
  document.body.dataset.loaded = 'deployments';
  if (!performance.getEntriesByName('zs-first-render').length) performance.mark('zs-first-render');
}

async function refreshCharts() {
  const q = state.selected ? '?deployment=' + encodeURIComponent(state.selected) : '';
  const s = await getJson('/console/api/series' + q);
  $('chart-title').textContent = 'Last hour: ' + (state.selected || 'all deployments');
  lineChart($('chart-ttft'), s.t, [{ label: 'p50', values: s.ttft_p50_s }, { label: 'p95', values: s.ttft_p95_s }], ' s');
  lineChart($('chart-tps'), s.t, [{ label: 'tokens/s', values: s.tokens_per_s }], '');
  lineChart($('chart-queue'), s.t, [{ label: 'interactive', values: s.queued_interactive }, { label: 'batch', values: s.queued_batch },
                                    { label: 'in flight', values: s.in_flight }], '');
  lineChart($('chart-cold'), s.t, [{ label: 'requests', values: s.requests }, { label: 'cold starts', values: s.cold_starts }], '');
}

function selectDeployment(name) {
  state.selected = state.selected === name ? '' : name;
  for (const tr of $('dep-table').tBodies[0].rows) tr.classList.toggle('selected', tr.dataset.deployment === state.selected);
  refreshCharts().catch((e) => toast(e.message, true));
}

async function adminAction(name, action, body) {
  try {
    await call('/admin/deployments/' + encodeURIComponent(name) + '/' + action, { method: 'POST', body,
                                                                                   headers: { 'Content-Type': 'application/json' } });
    toast(action + ' ' + name + ': done');
  } catch (e) {
    toast(action + ' ' + name + ': ' + e.message, true);
  }
}

// ---------------------------------------------------------------------------------------------
// Cost
// ---------------------------------------------------------------------------------------------

function costRange() {
  const v = $('cost-range').value;
  const now = Date.now() / 1000;
  if (v === 'all') return {};
  if (v === 'custom') {
    const since = $('cost-since').value ? new Date($('cost-since').value).getTime() / 1000 : 0;
    const until = $('cost-until').value ? new Date($('cost-until').value).getTime() / 1000 : now;
    return { since, until };
  }
  // Up to now exactly, so that the same query asked again later reports the same figures.
  return { since: now - Number(v), until: now };
}

async function loadCosts() {
  $('cost-custom').hidden = $('cost-range').value !== 'custom';
  const r = costRange();
  const p = new URLSearchParams();
  if (r.since !== undefined) p.set('since', r.since.toFixed(3));
  if (r.until !== undefined) p.set('until', r.until.toFixed(3));
  const path = '/admin/costs' + (p.toString() ? '?' + p.toString() : '');
  try {
    const c = await getJson(path);
    $('cost-error').textContent = '';
    state.costs = c;
    $('cost-table').dataset.source = path;
    renderCosts(c, path);
  } catch (e) {
    state.costs = null;
    $('cost-error').textContent = e.code === 'admin_key_required' ? 'Cost reports need an admin key: ' + e.message : e.message;
    $('cost-table').tBodies[0].replaceChildren();
    $('key-table').tBodies[0].replaceChildren();
  }
}

function cell(field, value, text) {
  return el('td', { class: typeof value === 'number' ? 'num' : null, 'data-field': field, 'data-value': String(value) }, text);
}

function renderCosts(c, path) {
  const deps = c.deployments || [];
  $('cost-window').textContent = (c.from > 0 ? fmtTime(c.from) : 'the beginning') + ' to ' + fmtTime(Math.min(c.to, Date.now() / 1000)) +
                                 ' · ' + path;
  barChart($('chart-cost'), deps.map((d) => d.deployment),
           [{ label: 'cost', values: deps.map((d) => d.cost) }, { label: 'always on', values: deps.map((d) => d.always_on_cost) }], '');
  $('cost-table').tBodies[0].replaceChildren(...deps.map((d) => el('tr', { 'data-deployment': d.deployment },
    cell('deployment', d.deployment, d.deployment),
    cell('requests', d.requests, fmtInt(d.requests)),
    cell('instance_seconds', d.instance_seconds, d.instance_seconds.toFixed(1)),
    cell('idle_share', d.idle_share, (100 * d.idle_share).toFixed(0) + ' %'),
    cell('cold_starts', d.cold_starts, fmtInt(d.cold_starts)),
    cell('cost', d.cost, fmtMoney(d.cost)),
    cell('always_on_cost', d.always_on_cost, fmtMoney(d.always_on_cost)),
    cell('saving', d.always_on_cost - d.cost, fmtMoney(d.always_on_cost - d.cost)),
    cell('cost_per_1k_requests', d.cost_per_1k_requests, fmtMoney(d.cost_per_1k_requests)))));
  const always = deps.reduce((a, d) => a + d.always_on_cost, 0);
  $('cost-table').tFoot.replaceChildren(el('tr', {}, el('td', {}, 'Total'), el('td', { class: 'num' }, fmtInt(deps.reduce((a, d) => a + d.requests, 0))),
    el('td'), el('td'), el('td'), cell('total_cost', c.total_cost, fmtMoney(c.total_cost)), el('td', { class: 'num' }, fmtMoney(always)),
    el('td', { class: 'num' }, fmtMoney(always - c.total_cost)), el('td')));
  $('key-table').tBodies[0].replaceChildren(...(c.keys || []).map((k) => el('tr', {},
    cell('api_key', k.api_key, k.api_key || '(no key)'),
    cell('deployment', k.deployment, k.deployment),
    cell('class', k.class, k.class),
    cell('requests', k.requests, fmtInt(k.requests)),
    cell('prompt_tokens', k.prompt_tokens, fmtInt(k.prompt_tokens)),
    cell('completion_tokens', k.completion_tokens, fmtInt(k.completion_tokens)),
    cell('cost_share', k.cost_share, fmtMoney(k.cost_share)))));
  document.body.dataset.loaded = 'costs';
}

function csvField(v) {
  const s = String(v === null || v === undefined ? '' : v);
  return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

function downloadCsv() {
  const c = state.costs;
  if (!c) return toast('Load a cost report first', true);
  const lines = ['section,deployment,api_key,class,requests,prompt_tokens,completion_tokens,instance_seconds,idle_seconds,cold_starts,cost,always_on_cost,cost_share'];
  for (const d of c.deployments || [])
    lines.push(['deployment', d.deployment, '', '', d.requests, d.prompt_tokens, d.completion_tokens, d.instance_seconds, d.idle_seconds,
                d.cold_starts, d.cost, d.always_on_cost, ''].map(csvField).join(','));
  for (const k of c.keys || [])
    lines.push(['key', k.deployment, k.api_key, k.class, k.requests, k.prompt_tokens, k.completion_tokens, '', '', '', '', '', k.cost_share]
      .map(csvField).join(','));
  const blob = new Blob([lines.join('\n') + '\n'], { type: 'text/csv' });
  const a = el('a', { href: URL.createObjectURL(blob), download: 'zeroserve-costs-' + Math.round(c.from) + '-' + Math.round(c.to) + '.csv' });
  document.body.append(a);
  a.click();
  a.remove();
}

// ---------------------------------------------------------------------------------------------
// Batch jobs
// ---------------------------------------------------------------------------------------------

async function pollBatches() {
  try {
    const j = await getJson('/v1/batches?limit=100');
    $('batch-error').textContent = '';
    renderBatches(j.data || []);
  } catch (e) {
    $('batch-error').textContent = e.message;
  }
  again('batches', pollBatches, 2000);  // jobs change slowly: a poll every 2 s is enough
}

function renderBatches(jobs) {
  $('batch-empty').hidden = jobs.length > 0;
  $('batch-table').tBodies[0].replaceChildren(...jobs.map((b) => {
    const n = b.request_counts || { total: 0, completed: 0, failed: 0 };
    const pct = (x) => (n.total ? 100 * x / n.total : 0).toFixed(1) + '%';
    const eta = b.zeroserve && b.zeroserve.eta_seconds !== null && b.zeroserve.eta_seconds !== undefined ? fmtSeconds(b.zeroserve.eta_seconds) : '—';
    const files = [];
    if (b.output_file_id) files.push(el('button', { type: 'button', class: 'small', onclick: () => downloadFile(b.output_file_id, b.id + '-results.jsonl') }, 'Results'));
    if (b.error_file_id) files.push(' ', el('button', { type: 'button', class: 'small', onclick: () => downloadFile(b.error_file_id, b.id + '-errors.jsonl') }, 'Errors'));
    return el('tr', { 'data-batch': b.id },
      el('td', {}, b.id, el('div', { class: 'muted' }, b.endpoint)),
      el('td', { 'data-field': 'status' }, el('span', { class: 'badge' }, b.status)),
      el('td', {}, el('span', { class: 'progress', title: pct(n.completed + n.failed) },
        el('span', { class: 'failed', style: 'width:' + pct(n.failed) }), el('span', { style: 'width:' + pct(n.completed) }))),
      el('td', { class: 'num', 'data-field': 'counts' }, n.completed + ' / ' + n.failed + ' / ' + n.total),
      el('td', {}, eta),
      el('td', {}, fmtTime(b.created_at)),
      el('td', {}, files.length ? files : '—'));
  }));
  document.body.dataset.loaded = 'batches';
}

async function downloadFile(id, name) {
  try {
    const blob = await (await call('/v1/files/' + encodeURIComponent(id) + '/content')).blob();
    const a = el('a', { href: URL.createObjectURL(blob), download: name });
    document.body.append(a);
    a.click();
    a.remove();
  } catch (e) {
    toast(e.message, true);
  }
}

// ---------------------------------------------------------------------------------------------
// Playground
// ---------------------------------------------------------------------------------------------

async function enterPlayground() {
  try {
    const models = (await getJson('/v1/models')).data.filter((m) => m.type !== 'embedding');
    const sel = $('pg-model');
    const keep = sel.value;
    sel.replaceChildren(...models.map((m) => el('option', { value: m.id }, m.id + ' (' + m.state + ')')));
    if (models.some((m) => m.id === keep)) sel.value = keep;
    document.body.dataset.loaded = 'playground';
  } catch (e) {
    toast(e.message, true);
  }
}

function setImage(file) {
  if (!file || !file.type.startsWith('image/')) return;
  const reader = new FileReader();
  reader.onload = () => {
    state.image = reader.result;  // a data: URL, sent as the OpenAI image_url part
    $('pg-preview').src = state.image;
    $('pg-preview').hidden = false;
  };
  reader.readAsDataURL(file);
}

function addMessage(role, text, image) {
  const body = el('span', { class: 'text' }, text);
  const m = el('div', { class: 'msg ' + role }, el('span', { class: 'role' }, role), image ? el('img', { src: image, alt: 'image' }) : null, body);
  $('pg-log').append(m);
  $('pg-log').scrollTop = $('pg-log').scrollHeight;
  return body;
}

function stat(name, value) { return el('span', { 'data-stat': name }, name + ' ', el('b', {}, value), ' · '); }

async function send(ev) {
  ev.preventDefault();
  if (state.busy) return;
  const text = $('pg-input').value.trim();
  if (!text && !state.image) return;
  const content = state.image ? [{ type: 'image_url', image_url: { url: state.image } }, { type: 'text', text: text || 'Describe the image.' }] : text;
  addMessage('user', text, state.image);
  state.chat.push({ role: 'user', content });
  $('pg-input').value = '';
  state.image = null;
  $('pg-preview').hidden = true;
  $('pg-file').value = '';
  const out = addMessage('assistant', '');
  state.busy = true;
  $('pg-send').disabled = true;
  $('pg-stats').replaceChildren('sending…');
  const t0 = performance.now();
  let first = null, pieces = 0, usage = null, coldMs = null, answer = '', waiting = '';
  try {
    const r = await call('/v1/chat/completions', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: $('pg-model').value, messages: state.chat, stream: true, stream_options: { include_usage: true },
                             max_tokens: Number($('pg-max').value) || 128, temperature: Number($('pg-temp').value) }) });
    const h = r.headers.get('X-Zeroserve-Cold-Start-Ms');
    if (h !== null) coldMs = Number(h);
    const pending = r.headers.get('X-Zeroserve-Cold-Start') === 'pending';
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (line.startsWith(':')) {  // the gateway's comments while a cold start runs
          const m = line.match(/cold start took (\d+) ms/);
          if (m) coldMs = Number(m[1]);
          else if (line.includes('waiting')) { waiting = line.slice(1).trim(); $('pg-stats').replaceChildren(waiting); }
          continue;
        }
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') continue;
        const j = JSON.parse(data);
        if (j.error) throw new Error(j.error.message);
        if (j.usage) usage = j.usage;
        const delta = j.choices && j.choices[0] && j.choices[0].delta;
        if (delta && delta.content) {
          if (first === null) first = performance.now();
          pieces++;
          answer += delta.content;
          out.textContent = answer;
        }
      }
    }
    const end = performance.now();
    state.chat.push({ role: 'assistant', content: answer });
    const tokens = usage ? usage.completion_tokens : pieces;
    const genS = first !== null ? (end - first) / 1000 : 0;
    const parts = [
      stat('TTFT', first !== null ? Math.round(first - t0) + ' ms' : '—'),
      stat('tokens/s', genS > 0 && tokens > 1 ? ((tokens - 1) / genS).toFixed(1) : '—'),
      stat('tokens', String(tokens)),
      stat('cold start', coldMs !== null ? 'yes, waited ' + coldMs + ' ms for an instance' : pending ? 'yes' : 'no (a warm instance)')];
    if (usage && usage.prompt_tokens_details && usage.prompt_tokens_details.image_tokens)
      parts.push(stat('image tokens', String(usage.prompt_tokens_details.image_tokens)));
    $('pg-stats').replaceChildren(...parts);
    out.parentElement.dataset.pieces = String(pieces);  // streamed events with text
    out.parentElement.dataset.done = 'true';
  } catch (e) {
    state.chat.pop();
    out.textContent = answer + (answer ? '\n' : '') + '[error] ' + e.message;
    out.parentElement.dataset.done = 'error';
    $('pg-stats').replaceChildren('failed: ' + e.message);
  } finally {
    state.busy = false;
    $('pg-send').disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Admin
// ---------------------------------------------------------------------------------------------

async function enterAdmin() {
  try {
    const s = await getJson('/console/api/status?limit=1');
    state.caller = s.caller;
    updateWho();
    const c = s.caller;
    $('admin-who').textContent = !c.keys_required ? 'No API keys are configured: the API and the admin actions are open to whoever reaches this address.'
      : c.admin ? 'Signed in with key "' + c.key_name + '", an admin key.' : 'Signed in with key "' + c.key_name + '", which is not an admin key: admin actions will be refused.';
    $('admin-reload').disabled = !c.admin;
    $('admin-forget').hidden = !c.keys_required;
    document.body.dataset.loaded = 'admin';
  } catch (e) {
    $('admin-who').textContent = e.message;
  }
}

async function reloadConfig() {
  $('admin-result').textContent = 'reloading…';
  try {
    const j = await (await call('/admin/reload', { method: 'POST' })).json();
    $('admin-result').textContent = 'Reloaded: ' + j.deployments + ' deployments.';
  } catch (e) {
    $('admin-result').textContent = 'Refused: ' + e.message;
  }
}

// ---------------------------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------------------------

function wire() {
  for (const a of document.querySelectorAll('#nav a'))
    a.addEventListener('click', (e) => { e.preventDefault(); show(a.dataset.page, true); });
  window.addEventListener('popstate', () => show(pageFromPath(), false));
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const k = $('key-input').value.trim();
    if (!k) return;
    sessionStorage.setItem(KEY_STORE, k);
    $('key-input').value = '';
    $('key-dialog').hidden = true;
    show(state.page || pageFromPath(), false);
  });
  let filterTimer = null;
  $('dep-filter').addEventListener('input', () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => { state.offset = 0; state.tick = 0; pollDeployments(); }, 200);
  });
  $('dep-state').addEventListener('change', () => { state.offset = 0; state.tick = 0; pollDeployments(); });
  $('dep-prev').addEventListener('click', () => { state.offset = Math.max(0, state.offset - state.limit); state.tick = 0; pollDeployments(); });
  $('dep-next').addEventListener('click', () => { state.offset += state.limit; state.tick = 0; pollDeployments(); });
  $('cost-range').addEventListener('change', loadCosts);
  $('cost-since').addEventListener('change', loadCosts);
  $('cost-until').addEventListener('change', loadCosts);
  $('cost-refresh').addEventListener('click', loadCosts);
  $('cost-csv').addEventListener('click', downloadCsv);
  $('pg-form').addEventListener('submit', send);
  $('pg-input').addEventListener('keydown', (e) => { if (e.key === 'Enter' && !e.shiftKey) send(e); });
  $('pg-file').addEventListener('change', () => setImage($('pg-file').files[0]));
  $('pg-input').addEventListener('paste', (e) => {
    for (const item of (e.clipboardData || {}).items || []) if (item.kind === 'file') setImage(item.getAsFile());
  });
  $('pg-clear').addEventListener('click', () => { state.chat = []; $('pg-log').replaceChildren(); $('pg-stats').replaceChildren(); });
  $('admin-reload').addEventListener('click', reloadConfig);
  $('admin-forget').addEventListener('click', () => { sessionStorage.removeItem(KEY_STORE); askForKey(''); });
}

async function start() {
  wire();
  // Whether keys are required is public (the API says so with its 401s anyway); asking first
  // keeps the page from calling the API without a key.
  try {
    state.keysRequired = (await (await fetch('/console/api/auth')).json()).keys_required;
  } catch (e) {
    state.keysRequired = true;
  }
  show(pageFromPath(), false);
}

start();
