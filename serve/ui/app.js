// replayctl web UI: plain JavaScript, no build step, no external resource.
// Every call goes to the /v1 API with the bearer token kept in sessionStorage.
'use strict';

const TOKEN_KEY = 'replayctl.token';
const main = document.getElementById('main');
let pageAbort = null; // aborts the current page's streams and timers

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

// can reports whether the logged-in token holds scope (the server checks
// again; the UI only hides what would be refused).
function can(scope) {
  let scopes = [];
  try { scopes = JSON.parse(sessionStorage.getItem(TOKEN_KEY + '.scopes') || '[]'); } catch (_) { /* none */ }
  return scopes.includes('admin') || scopes.includes(scope) || (scope === 'read' && scopes.length > 0);
}

class APIError extends Error {
  constructor(status, body) {
    super((body && body.error) || ('HTTP ' + status));
    this.status = status;
    this.problems = (body && body.problems) || [];
  }
}

async function api(method, path, body, signal) {
  return (await request(method, path, body, signal)).data;
}

// request is api() with the response, for its headers.
async function request(method, path, body, signal) {
  const opts = { method, headers: { Authorization: 'Bearer ' + token() }, signal };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  const type = res.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await res.json() : await res.text();
  if (res.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    location.hash = '#/login';
    throw new APIError(401, data);
  }
  if (!res.ok) throw new APIError(res.status, data);
  return { data, res };
}

// nextPage is the URL of a list's next page (its Link header's
// rel="next"), or null on the last page.
function nextPage(res) {
  const m = /<([^>]*)>\s*;\s*rel="next"/.exec(res.headers.get('Link') || '');
  return m ? m[1] : null;
}

function errorBox(err) {
  return h('div', { class: 'error', role: 'alert' }, err.message, err.problems && err.problems.length ? '\n' + err.problems.join('\n') : '');
}

function toast(msg) {
  const t = document.getElementById('toast');
  t.textContent = msg;
  t.hidden = false;
  setTimeout(() => { t.hidden = true; }, 3000);
}

function badge(text, cls) { return h('span', { class: 'badge ' + (cls || text) }, text); }

// submitter shows who submitted a job: the name only when the spec's
// signature verified against a key serve trusts (the API gives no
// submitter otherwise); else an "unverified" badge, and what the spec
// claims in quotes, never as the submitter.
function submitter(j, long) {
  if (j.verified) {
    return h('span', { class: 'submitter', title: 'signature verified (key ' + j.signer + ')' }, j.submitter || '-', ' ', badge('verified', 'verified'));
  }
  return h('span', { class: 'submitter', title: 'not verified: ' + (j.unverified || 'unknown') }, badge('unverified', 'unverified'),
    j.claimed_submitter ? h('span', { class: 'muted' }, ' claims "' + j.claimed_submitter + '"') : '',
    long ? h('div', { class: 'muted' }, j.unverified || '') : '');
}

function ago(ts) { return agoSeconds(Math.max(0, (Date.now() - new Date(ts).getTime()) / 1000)); }

// agoSeconds says how long ago s seconds is.
function agoSeconds(s) {
  if (s < 60) return s.toFixed(1) + ' s ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  return Math.round(s / 3600) + ' h ago';
}

function time(ts) { return ts && !ts.startsWith('0001') ? new Date(ts).toLocaleString() : '-'; }

// specTime is when a job was published: its spec record's Kafka timestamp
// (published_at), which the broker sets where the jobs topic is
// LogAppendTime, whereas a spec claims whatever issued_at its publisher
// wrote. The claim is shown only where it is more than a minute off (a
// forged spec, a submitter's clock far off): they agree otherwise, and
// the title has both.
function specTime(j) {
  if (!j.published_at) return h('div', { class: 'spec-time' }, '-');
  const clock = j.published_at_type === 'LogAppendTime' ? 'the broker\'s clock when it appended the spec'
    : 'the publishing client\'s clock: the jobs topic keeps CreateTime';
  const title = 'published at ' + j.published_at + ' (Kafka record timestamp, ' + clock + ')\nthe spec says it was issued at ' + (j.issued_at || '-');
  const off = j.issued_at ? new Date(j.issued_at) - new Date(j.published_at) : 0;
  return h('div', { class: 'spec-time' }, h('time', { datetime: j.published_at, title }, time(j.published_at)),
    Math.abs(off) > 60000 ? h('div', { class: 'loss claim' }, 'claims issued ', h('span', {}, time(j.issued_at))) : '');
}

function span(ms) {
  if (!ms) return '-';
  if (ms < 1000) return ms + ' ms';
  if (ms < 120000) return (ms / 1000).toFixed(1) + ' s';
  return (ms / 60000).toFixed(1) + ' min';
}

function labels(obj) { return Object.keys(obj || {}).sort().map(k => k + '=' + obj[k]).join(','); }

function parseLabels(s) {
  const out = {};
  for (const kv of s.split(',').map(x => x.trim()).filter(Boolean)) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new Error('labels: want key=value, got "' + kv + '"');
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

function quote(s) {
  return /^[A-Za-z0-9_\-./=:,@+%]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'";
}

// commandLine mirrors the server's: the replayctl command a submission equals.
function commandLine(b) {
  const args = ['replayctl', 'jobs', 'submit', quote(b.scenario), '--job', quote(b.job), '--on', quote(labels(b.selector))];
  if (b.shards > 1) args.push('--shards', String(b.shards));
  if (b.for) args.push('--for', b.for);
  const sets = (b.set || []).slice();
  if (b.window) sets.push('jobs.' + b.job + (b.kind === 'replay' ? '.source.window=' : '.save-window=') + b.window);
  for (const s of sets) args.push('--set', quote(s));
  return args.join(' ');
}

// ---- pages ----

const pages = {
  login: pageLogin, recordings: pageRecordings, agents: pageAgents, 'new-recording': pageNewRecording,
  'new-replay': pageNewReplay, job: pageJob, history: pageHistory,
};

async function route() {
  if (pageAbort) pageAbort.abort();
  pageAbort = new AbortController();
  const [name, arg] = location.hash.replace(/^#\//, '').split('?')[0].split('/');
  const page = pages[name] ? name : 'recordings';
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === page);
  if (!token() && page !== 'login') { location.hash = '#/login'; return; }
  document.getElementById('logout').hidden = !token();
  document.getElementById('who').textContent = sessionStorage.getItem(TOKEN_KEY + '.name') || '';
  main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  try {
    await pages[page](decodeURIComponent(arg || ''), pageAbort.signal);
  } catch (err) {
    if (err.name === 'AbortError') return;
    main.replaceChildren(errorBox(err));
  }
}

async function pageLogin() {
  const input = h('input', { type: 'password', id: 'token', autocomplete: 'off', placeholder: 'rpl_…', required: true });
  const msg = h('div');
  const form = h('form', { class: 'card login', id: 'login-form', onsubmit: async ev => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    try {
      const me = await api('GET', '/v1/whoami');
      sessionStorage.setItem(TOKEN_KEY + '.name', me.name + ' (' + me.scopes.join(',') + ')');
      sessionStorage.setItem(TOKEN_KEY + '.scopes', JSON.stringify(me.scopes));
      location.hash = '#/recordings';
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      msg.replaceChildren(errorBox(err));
    }
  } },
  h('h1', {}, 'Log in'),
  h('label', {}, 'API token', h('small', {}, 'made by replayctl tokens add NAME --scope …; kept in this tab only'), input),
  h('p', {}, h('button', { type: 'submit' }, 'Log in')), msg);
  main.replaceChildren(form);
  input.focus();
}

async function pageRecordings(_, signal) {
  const ws = await api('GET', '/v1/windows', undefined, signal);
  const rows = ws.map(w => {
    const del = h('button', { class: 'secondary', type: 'button', 'data-window': w.name, onclick: async () => {
      if (del.dataset.armed !== '1') { del.dataset.armed = '1'; del.textContent = 'Confirm delete'; del.className = 'danger'; return; }
      try { await api('DELETE', '/v1/windows/' + encodeURIComponent(w.name)); toast('Removed ' + w.name); route(); }
      catch (err) { main.prepend(errorBox(err)); }
    } }, 'Delete');
    const hosts = Object.keys(w['host-requests'] || {}).length
      ? Object.entries(w['host-requests']).map(([k, v]) => k + ': ' + v).join(', ')
      : (w.hosts || []).join(', ');
    return h('tr', {},
      h('td', { class: 'wrap' }, h('strong', {}, w.name), w.partial ? [' ', badge('partial', 'partial')] : '',
        w.partial ? h('div', { class: 'muted' }, (w.partial_reasons || []).join('; ')) : ''),
      h('td', { class: 'wrap' }, w.topic),
      h('td', {}, time(w['started-at']), h('div', { class: 'muted' }, span(w.span_ms))),
      h('td', { class: 'num' }, w.requests), h('td', { class: 'num' }, w.responses), h('td', { class: 'num' }, w.records),
      h('td', {}, hosts || '-'),
      h('td', {}, can('replay') ? h('a', { href: '#/new-replay/' + encodeURIComponent(w.name) }, 'Replay…') : '', ' ', can('record') ? del : ''));
  });
  main.replaceChildren(h('h1', {}, 'Recordings'),
    ws.length ? h('table', { id: 'windows' }, h('tr', {}, ['Window', 'Topic', 'Captured / span', 'Requests', 'Responses', 'Records', 'Hosts', ''].map(t => h('th', {}, t))), rows)
      : h('p', { class: 'muted' }, 'No recordings yet: start one from New recording.'));
}

// runLink is one of an agent's runs: its job, linked to the job's page,
// its shard, and whether it waits for a free run on the agent.
function runLink(r) {
  return h('div', { class: 'run' }, h('a', { href: '#/job/' + encodeURIComponent(r.job) }, r.job),
    r.shard !== undefined && r.shard !== null ? h('span', { class: 'muted' }, ' shard ' + r.shard) : '',
    r.queued ? [' ', badge('QUEUED')] : '');
}

async function pageAgents(_, signal) {
  const render = agents => !agents.length ? h('p', { class: 'muted', id: 'no-agents' }, 'No agent has sent a heartbeat: start one on each host with replayctl agent --brokers … --labels role=… --allow record|replay --trust serve.pub.') : h('table', { id: 'agents' },
    h('tr', {}, ['Agent', 'Labels', 'Allows', 'Health', 'Last heartbeat', 'Current jobs', 'Runs', 'Max spec TTL', 'Version'].map(t => h('th', {}, t))),
    agents.map(a => h('tr', {}, h('td', {}, h('strong', {}, a.name)), h('td', { class: 'wrap' }, labels(a.labels) || '-'), h('td', {}, (a.allow || []).join(', ') || '-'),
      h('td', {}, badge(a.health)), h('td', { class: 'last-heartbeat', title: 'read by serve ' + time(a.last_heartbeat) }, a.last_heartbeat_age_ms !== undefined ? agoSeconds(a.last_heartbeat_age_ms / 1000) : ago(a.last_heartbeat)),
      h('td', { class: 'wrap runs' }, (a.runs || []).length ? a.runs.map(runLink) : '-'),
      h('td', {}, a.max_concurrent ? a.running + '/' + a.max_concurrent + ' running, ' + a.queued + ' queued' : '-'),
      h('td', { title: 'the agent refuses a spec valid for longer (--max-spec-ttl)' }, a.max_spec_ttl || '-'), h('td', { class: 'wrap' }, a.version || '-'))));
  const box = h('div', {}, render(await api('GET', '/v1/agents', undefined, signal)));
  main.replaceChildren(h('h1', {}, 'Agents'), box);
  const timer = setInterval(async () => {
    try { box.replaceChildren(render(await api('GET', '/v1/agents', undefined, signal))); } catch (_) { clearInterval(timer); }
  }, 2000);
  signal.addEventListener('abort', () => clearInterval(timer));
}

// scenarioOptions lists valid scenarios first; an invalid one is shown,
// disabled, with its first problem.
function scenarioOptions(list) {
  const sorted = list.slice().sort((a, b) => (b.valid - a.valid) || a.file.localeCompare(b.file));
  return sorted.map(s => h('option', { value: s.file, disabled: !s.valid, title: s.valid ? '' : (s.problems || []).join('\n') },
    s.file + (s.valid ? '' : ' (invalid: ' + (s.problems || []).length + ' problems)')));
}

function field(label, input, hint) {
  return h('label', {}, label, hint ? h('small', {}, hint) : '', input);
}

async function submitJob(body, out) {
  out.replaceChildren(h('p', { class: 'muted' }, 'Validating and submitting…'));
  try {
    const job = await api('POST', '/v1/jobs', body);
    location.hash = '#/job/' + encodeURIComponent(job.id);
  } catch (err) {
    out.replaceChildren(errorBox(err));
  }
}

async function pageNewRecording(_, signal) {
  const scenarios = (await api('GET', '/v1/scenarios', undefined, signal)).filter(s => s.jobs.some(j => j.kind === 'record'));
  if (!scenarios.length) { main.replaceChildren(h('h1', {}, 'New recording'), h('p', { class: 'muted' }, 'No scenario in the scenarios directory has a record job.')); return; }
  const sc = h('select', { id: 'rec-scenario' }, scenarioOptions(scenarios));
  const job = h('select', { id: 'rec-job' });
  const sel = h('input', { id: 'rec-selector', value: 'role=web', placeholder: 'role=web' });
  const dur = h('input', { id: 'rec-for', value: '30s', placeholder: '30s' });
  const win = h('input', { id: 'rec-window', placeholder: 'checkout-peak' });
  const cmd = h('pre', { class: 'cmd', id: 'rec-command' });
  const out = h('div');
  // A job whose scenario says when it stops keeps that stop unless a
  // duration is given; one that never stops gets 30 s to start with.
  const fillJob = () => {
    const s = scenarios.find(x => x.file === sc.value);
    const j = s.jobs.find(x => x.name === job.value);
    win.placeholder = (j && j.window) || 'window name';
    const own = Object.entries((j && j.stop) || {}).map(([k, v]) => k + ' ' + v).join(', ');
    dur.value = own ? '' : '30s';
    dur.placeholder = own ? 'the scenario\'s: ' + own : '30s';
    preview();
  };
  const fill = () => {
    const s = scenarios.find(x => x.file === sc.value);
    job.replaceChildren(...s.jobs.filter(j => j.kind === 'record').map(j => h('option', { value: j.name }, j.name)));
    fillJob();
  };
  const body = () => ({ scenario: sc.value, job: job.value, kind: 'record', selector: parseLabels(sel.value), for: dur.value.trim(), window: win.value.trim() || undefined });
  const preview = () => { try { cmd.textContent = commandLine(body()); } catch (err) { cmd.textContent = err.message; } };
  sc.addEventListener('change', fill);
  job.addEventListener('change', fillJob);
  for (const el of [sel, dur, win]) el.addEventListener('input', preview);
  fill();
  main.replaceChildren(h('h1', {}, 'New recording'),
    h('form', { class: 'card', id: 'rec-form', onsubmit: ev => { ev.preventDefault(); const b = body(); delete b.kind; submitJob(b, out); } },
      h('div', { class: 'grid' }, field('Scenario', sc), field('Record job', job), field('Hosts (agent labels)', sel, 'every live agent matching records'),
        field('Duration', dur, 'stop after (empty: the scenario\'s stop)'), field('Window name', win, 'saved when the last host flushed')),
      h('h2', {}, 'Equivalent command'), cmd, h('p', {}, h('button', { type: 'submit' }, 'Start recording'))), out);
}

async function pageNewReplay(pick, signal) {
  const [scenarios, windows] = await Promise.all([api('GET', '/v1/scenarios', undefined, signal), api('GET', '/v1/windows', undefined, signal)]);
  const replays = scenarios.filter(s => s.jobs.some(j => j.kind === 'replay'));
  if (!replays.length) { main.replaceChildren(h('h1', {}, 'New replay'), h('p', { class: 'muted' }, 'No scenario in the scenarios directory has a replay job.')); return; }
  const win = h('select', { id: 'rp-window' }, h('option', { value: '' }, '(the scenario\'s own)'), windows.map(w => h('option', { value: w.name, selected: w.name === pick }, w.name + ' · ' + w.requests + ' requests' + (w.partial ? ' · partial' : ''))));
  // A partial recording says what it lacks before it is replayed.
  const winNote = h('div', { class: 'loss', id: 'rp-window-note' });
  const noteWindow = () => {
    const w = windows.find(x => x.name === win.value);
    winNote.textContent = w && w.partial ? 'Partial: ' + ((w.partial_reasons || []).join('; ') || 'the recording is incomplete') + '. The replay sends only what was recorded.' : '';
  };
  win.addEventListener('change', noteWindow);
  noteWindow();
  const sc = h('select', { id: 'rp-scenario' }, scenarioOptions(replays));
  const job = h('select', { id: 'rp-job' });
  const target = h('input', { id: 'rp-target', placeholder: 'http://127.0.0.1:8080' });
  const sel = h('input', { id: 'rp-selector', value: 'role=load' });
  const shards = h('input', { id: 'rp-shards', type: 'number', min: 1, max: 256, value: 1 });
  const dur = h('input', { id: 'rp-duration', placeholder: 'the whole window' });
  const params = h('div', { class: 'grid', id: 'rp-params' });
  const extra = h('input', { id: 'rp-extra', placeholder: 'jobs.replay.sink.http.workers=32; …' });
  const cmd = h('pre', { class: 'cmd', id: 'rp-command' });
  const out = h('div');
  let inputs = [];
  const current = () => replays.find(x => x.file === sc.value);
  const currentJob = () => current().jobs.find(x => x.name === job.value);
  const fillParams = () => {
    const s = current(), j = currentJob();
    target.placeholder = j && j.target ? 'target ' + j.target : '';
    target.disabled = !(j && j.target && !j.target.includes('://'));
    inputs = [];
    const kids = [];
    for (const v of s.vars) {
      const el = h('input', { 'data-set': 'vars.' + v.name, 'data-default': v.value, value: v.default, placeholder: v.value });
      inputs.push(el);
      kids.push(field('var ' + v.name, el, 'default ' + (v.default || '(none)')));
    }
    for (const k of ['speed', 'rate', 'amplify', 'loop', 'max-gap']) {
      const now = (j && j.pacing[k]) || '';
      const el = h('input', { 'data-set': 'jobs.' + job.value + '.' + k, 'data-default': now, value: now, placeholder: { speed: '1, 2, max', rate: '500/s', amplify: '1', loop: '1', 'max-gap': '1s' }[k], id: 'rp-' + k });
      inputs.push(el);
      kids.push(field(k, el, now ? 'scenario: ' + now : 'not set'));
    }
    params.replaceChildren(...kids);
    for (const el of inputs) el.addEventListener('input', preview);
    preview();
  };
  const fillJobs = () => {
    job.replaceChildren(...current().jobs.filter(j => j.kind === 'replay').map(j => h('option', { value: j.name }, j.name)));
    fillParams();
  };
  const body = () => {
    const set = [];
    for (const el of inputs) {
      const v = el.value.trim();
      const key = el.dataset.set;
      const isVar = key.startsWith('vars.');
      const unchanged = isVar ? (v === el.dataset.default || v === '' || v === (current().vars.find(x => 'vars.' + x.name === key) || {}).default) : v === el.dataset.default;
      if (v !== '' && !unchanged) set.push(key + '=' + v);
    }
    const j = currentJob();
    if (target.value.trim() && j && j.target) set.push('targets.' + j.target + '.url=' + target.value.trim());
    if (dur.value.trim()) set.push('jobs.' + job.value + '.stop.after=' + dur.value.trim());
    for (const s of extra.value.split(';').map(x => x.trim()).filter(Boolean)) set.push(s);
    return { scenario: sc.value, job: job.value, kind: 'replay', selector: parseLabels(sel.value), shards: Math.max(1, parseInt(shards.value, 10) || 1), set, window: win.value || undefined };
  };
  const preview = () => { try { cmd.textContent = commandLine(body()); } catch (err) { cmd.textContent = err.message; } };
  sc.addEventListener('change', fillJobs);
  job.addEventListener('change', fillParams);
  for (const el of [win, target, sel, shards, dur, extra]) el.addEventListener('input', preview);
  win.addEventListener('change', preview);
  fillJobs();
  main.replaceChildren(h('h1', {}, 'New replay'),
    h('form', { class: 'card', id: 'rp-form', onsubmit: ev => { ev.preventDefault(); const b = body(); delete b.kind; submitJob(b, out); } },
      h('div', { class: 'grid' }, field('Recording', h('span', { class: 'stack' }, win, winNote)), field('Scenario', sc), field('Replay job', job), field('Target URL', target, 'overrides the job\'s target'),
        field('Load agents (labels)', sel), field('Shards', shards, 'one agent each'), field('Duration', dur, 'stop after, e.g. 30s')),
      h('h2', {}, 'Parameters'), params,
      h('div', { class: 'grid' }, field('Extra --set', extra, 'PATH=VALUE; separated by ;')),
      h('h2', {}, 'Equivalent command'), cmd, h('p', {}, h('button', { type: 'submit', id: 'rp-start' }, 'Start replay'))), out);
}

// partResult is a part's Result cell: what it did and what it lost, in the
// API's words: a record part's lost_text (by cause, in each cause's unit:
// serve renders it, as jobs show does), a replay shard's source-gaps (what
// its window lacks of its recording: a window saved partial) and not-sent
// lines, and a resumed shard's resume_skipped (the requests its lost run
// had answered, which it did not send again: their results are not in the
// totals) and possible_duplicates (the requests it sent that its lost run
// may have sent too: the target may have had them twice).
function partResult(p, kind) {
  const r = p.result;
  if (!r) return '';
  const skipped = p.resume_skipped || 0;
  const dups = p.possible_duplicates || 0;
  return [
    kind === 'replay' || r.sent ? 'sent ' + (r.sent || 0) + ', errors ' + (r.errors || 0) : 'requests ' + (r.requests || 0),
    p.lost_text ? h('div', { class: 'loss' }, 'lost: ' + p.lost_text) : '',
    skipped ? h('div', { class: 'loss resumed', title: 'resume-skipped: this shard was re-run after its run was lost and resumed where that run was; the lost run had answered these requests, and their results were lost with it' },
      'resumed: ' + skipped + (skipped === 1 ? ' request' : ' requests') + ' skipped (answered by the lost run)') : '',
    dups ? h('div', { class: 'loss duplicates', title: 'possible-duplicates: requests this re-run sent that were scheduled after its resume point and before its lost run was last seen alive: the lost run may have sent them too, so the target may have had them twice' },
      'possible duplicates: ' + dups + (dups === 1 ? ' request (the lost run may have sent it too)' : ' requests (the lost run may have sent them too)')) : '',
    ...(r['source-gaps'] || []).map(g => h('div', { class: 'loss' }, 'partial window: ' + g)),
    ...(r['not-sent'] || []).map(n => h('div', { class: 'loss' }, n)),
  ];
}

// lossNote says what a job lost (a recording's lost_text) or lacks (a
// replay of a partial window: its result's source-gaps; a replay whose
// merged totals miss what a lost run had answered: its result's partial,
// a line a shard, in the title), whatever its state: a SUCCEEDED job
// under on-loss: warn lost data too. It answers a list of notes.
function lossNote(j, tag) {
  const gaps = (j.result && j.result['source-gaps']) || [];
  const partial = partialLines(j);
  if (j.lost_text) return [h(tag, { class: 'loss job-loss' }, ' lost: ' + j.lost_text)];
  return [
    gaps.length ? h(tag, { class: 'loss job-loss', title: gaps.join('\n') }, ' partial window') : '',
    partial.length ? h(tag, { class: 'loss job-loss', title: partial.join('\n') }, ' partial results') : '',
  ];
}

// partialLines is what a replay job's merged totals miss (its result's
// partial): the results of the requests each lost run had answered, which
// its shard's re-run did not send again.
function partialLines(j) { return (j.result && j.result.partial) || []; }

// agentGone marks a part not final whose agent is gone (the API's
// agent_gone, as jobs show marks it): its state is its agent's last word,
// which a live agent that trusts the job ends agent_grace_s after the
// agent's last heartbeat, and with none, nothing does.
function agentGone(p) {
  if (!p.agent_gone) return '';
  const lost = p.agent_gone === 'lost';
  const at = p.agent_last_seen ? new Date(p.agent_last_seen).toLocaleTimeString() : '-';
  const silent = Math.floor((p.agent_silent_ms || 0) / 1000) + ' s ago';
  const grace = Math.round(p.agent_grace_s || 45) + 's';
  const text = (lost ? 'AGENT LOST — no heartbeat since ' + at + ' (' + silent + ')' : 'AGENT STOPPED at ' + at + ' (' + silent + ')') +
    '; a live agent that trusts the job ends this part ' + grace + ' after that';
  return h('div', { class: 'badge agent-gone ' + p.agent_gone, title: 'last heartbeat read by serve ' + time(p.agent_last_seen) }, text);
}

// jobAgentGone is History's note on a job with parts whose agent is gone.
function jobAgentGone(j) {
  if (!j.agent_gone) return '';
  const n = j.parts_agent_gone || 1;
  return h('div', { class: 'badge agent-gone ' + j.agent_gone, title: n + (n === 1 ? ' part' : ' parts') + ' not ended whose agent is ' + j.agent_gone + ': see the job' },
    j.agent_gone === 'lost' ? 'AGENT LOST' : 'AGENT STOPPED');
}

function partRow(p, kind) {
  const pr = p.progress || {};
  const pct = pr.total > 0 ? Math.min(100, 100 * pr.done / pr.total) : (p.state === 'SUCCEEDED' ? 100 : 0);
  return h('tr', { 'data-part': p.part },
    h('td', {}, p.part), h('td', {}, p.agent || '-'), h('td', { class: 'part-state' }, badge(p.state), agentGone(p)),
    h('td', {}, h('div', { class: 'bar' + (p.state === 'SUCCEEDED' ? ' done' : ''), role: 'progressbar', 'aria-valuenow': Math.round(pct), 'aria-valuemin': 0, 'aria-valuemax': 100 }, h('span', { style: 'width:' + pct.toFixed(1) + '%' })),
      h('div', { class: 'muted' }, pr.total > 0 ? pr.done + ' / ' + (pr.estimated ? '≈' : '') + pr.total : (pr.done ? String(pr.done) : ''))),
    h('td', { class: 'wrap' }, partResult(p, kind)),
    h('td', { class: 'muted wrap' }, p.reason || (pr.line || '')));
}

async function pageJob(id, signal) {
  let [job, all] = await Promise.all([api('GET', '/v1/jobs/' + encodeURIComponent(id), undefined, signal), states()]);
  const final = new Set(all.filter(s => s.final).map(s => s.state));
  const isFinal = s => final.has(s);
  const state = h('span', { id: 'job-state' });
  const partial = h('div', { id: 'job-partial', class: 'job-partial' });
  // A replay whose shards share no timeline (its window has no capture
  // time that is not bogus) says so, as jobs show warns.
  const timeline = h('div', { id: 'job-timeline', class: 'job-partial' });
  const parts = h('tbody', { id: 'parts' });
  const report = h('div', { id: 'report' });
  const msg = h('div');
  const log = h('ol', { id: 'events', class: 'muted' });
  const cancel = h('button', { class: 'danger', type: 'button', id: 'cancel', onclick: async () => {
    cancel.disabled = true;
    try { await api('POST', '/v1/jobs/' + encodeURIComponent(id) + '/cancel'); toast('Cancelled ' + id); }
    catch (err) { msg.replaceChildren(errorBox(err)); cancel.disabled = false; }
  } }, 'Cancel');
  const rerun = h('button', { class: 'secondary', type: 'button', onclick: async () => {
    try { const j = await api('POST', '/v1/jobs/' + encodeURIComponent(id) + '/rerun'); location.hash = '#/job/' + encodeURIComponent(j.id); }
    catch (err) { msg.replaceChildren(errorBox(err)); }
  } }, 'Run again');
  const byPart = new Map();
  const render = () => {
    state.replaceChildren(badge(job.state), job.reason ? h('span', { class: 'muted' }, ' ' + job.reason) : '',
      ...lossNote(job, 'span'));
    // The header's note says partial results; these are its lines.
    partial.replaceChildren(...partialLines(job).map(l => h('div', { class: 'loss' }, 'partial results: ' + l)));
    partial.hidden = !partial.childElementCount;
    timeline.replaceChildren(job.timeline ? h('div', { class: 'loss' }, 'warning: ' + job.timeline) : '');
    timeline.hidden = !job.timeline;
    parts.replaceChildren(...[...byPart.values()].sort((a, b) => order(a.part).localeCompare(order(b.part))).map(p => partRow(p, job.kind)));
    if (!byPart.size) parts.append(h('tr', { id: 'no-parts' }, h('td', { colspan: 6, class: 'muted' }, isFinal(job.state) ? 'No agent ran any part of this job.' : 'No part yet: no agent has taken this job.')));
    cancel.hidden = isFinal(job.state) || !can(job.kind);
    rerun.hidden = !can(job.kind) || !job.rerunnable; // serve signs again only what it signed
  };
  for (const p of job.parts) byPart.set(p.part, p);
  main.replaceChildren(
    h('h1', {}, 'Job ', h('code', {}, job.id), ' ', state),
    partial,
    timeline,
    h('div', { class: 'card' },
      h('div', { class: 'grid' },
        h('div', {}, h('div', { class: 'muted' }, 'Kind'), job.kind), h('div', {}, h('div', { class: 'muted' }, 'Scenario'), job.scenario ? job.scenario + ' · ' + (job.job || '') : '-'),
        h('div', {}, h('div', { class: 'muted' }, 'Agents'), [labels(job.selector), (job.agents || []).join(', ')].filter(Boolean).join(' → ') || '-'),
        h('div', {}, h('div', { class: 'muted' }, 'Window'), job.window || '-'),
        h('div', {}, h('div', { class: 'muted' }, 'Submitted by'), submitter(job, true), h('div', { class: 'muted' }, specTime(job)))),
      job.command ? [h('h2', {}, 'Command'), h('pre', { class: 'cmd' }, job.command)] : '',
      h('p', { class: 'row' }, cancel, rerun)),
    msg,
    h('h2', {}, 'Progress'),
    h('table', { id: 'parts-table' }, h('thead', {}, h('tr', {}, ['Part', 'Agent', 'State', 'Progress', 'Result', 'Detail'].map(t => h('th', {}, t)))), parts),
    report,
    h('h2', {}, 'Events'), log);
  render();
  const showReport = async () => {
    try {
      const html = await api('GET', '/v1/jobs/' + encodeURIComponent(id) + '/report.html', undefined, signal);
      const frame = h('iframe', { class: 'report', id: 'report-frame', sandbox: 'allow-same-origin', title: 'report' });
      frame.srcdoc = html;
      report.replaceChildren(h('h2', {}, 'Report ', h('a', { href: '#', onclick: async ev => { ev.preventDefault(); const j = await api('GET', '/v1/jobs/' + encodeURIComponent(id) + '/report.json'); const w = h('pre', { class: 'cmd', id: 'report-json' }, JSON.stringify(j, null, 2)); const old = report.querySelector('#report-json'); if (old) old.replaceWith(w); else report.append(w); } }, '(JSON)')), frame);
    } catch (err) { if (err.name !== 'AbortError') report.replaceChildren(errorBox(err)); }
  };
  const logEvent = e => log.append(h('li', {}, new Date(e.at).toLocaleTimeString() + ' ' + e.part + (e.agent ? ' (' + e.agent + ')' : '') + ' → ' + e.state + (e.reason ? ': ' + e.reason : '')));
  if (isFinal(job.state)) {
    // A finished job's log is its state changes, which the stream replays
    // before it ends.
    await showReport();
    await stream('/v1/jobs/' + encodeURIComponent(id) + '/events', signal, async (type, data) => { if (type === 'state') logEvent(JSON.parse(data)); });
    return;
  }
  // No event says that a part's agent went silent: its heartbeats do.
  // Whether each part's agent is gone (agent_gone) is asked again every
  // 3 s while the job runs.
  const gone = setInterval(async () => {
    try {
      const j = await api('GET', '/v1/jobs/' + encodeURIComponent(id), undefined, signal);
      for (const p of j.parts) {
        const old = byPart.get(p.part);
        // An answer that comes after the part ended says nothing of it.
        if (old && !isFinal(old.state)) Object.assign(old, { agent_gone: p.agent_gone, agent_last_seen: p.agent_last_seen, agent_silent_ms: p.agent_silent_ms, agent_grace_s: p.agent_grace_s });
      }
      render();
    } catch (_) { /* the next look, or the stream, says */ }
  }, 3000);
  signal.addEventListener('abort', () => clearInterval(gone));
  await stream('/v1/jobs/' + encodeURIComponent(id) + '/events', signal, async (type, data) => {
    if (type === 'end') {
      clearInterval(gone);
      job = await api('GET', '/v1/jobs/' + encodeURIComponent(id), undefined, signal);
      for (const p of job.parts) byPart.set(p.part, p);
      render();
      await showReport();
      return;
    }
    const e = JSON.parse(data);
    if (type === 'state') logEvent(e);
    // The job's state as this event leaves it: while its record says
    // ASSIGNED, how far its runs got (QUEUED, ARMED, RUNNING).
    job.state = e.job_state || job.state;
    if (e.part === 'job') { job.reason = e.reason; job.lost_text = e.lost_text; job.result = e.result || job.result; job.timeline = job.timeline || (e.result && e.result.timeline) || ''; }
    else {
      const old = byPart.get(e.part) || {};
      byPart.set(e.part, Object.assign({}, old, { part: e.part, agent: e.agent, shard: e.shard, state: e.state, reason: e.reason, progress: e.progress || (e.state === old.state ? old.progress : null), result: e.result, lost_text: e.lost_text, resume_skipped: e.resume_skipped, possible_duplicates: e.possible_duplicates }));
    }
    render();
  });
}

// states answers every state the fleet reports, in order, and whether each
// is final (GET /v1/states), asked once: the History filter offers them,
// the Job page knows by them when a job has ended.
let statesAsked = null;
function states() {
  if (!statesAsked) statesAsked = api('GET', '/v1/states').catch(err => { statesAsked = null; throw err; });
  return statesAsked;
}

function order(part) {
  const m = /^shard\/(\d+)(.*)$/.exec(part);
  return m ? '0' + m[1].padStart(8, '0') + m[2] : '1' + part;
}

// stream reads server-sent events with fetch (EventSource cannot send the
// Authorization header). A dropped connection (a serve instance restarting
// behind a load balancer) is resumed from the last event ID.
async function stream(path, signal, onEvent) {
  let lastId = '';
  for (let attempt = 0; ; attempt++) {
    const headers = { Authorization: 'Bearer ' + token(), Accept: 'text/event-stream' };
    if (lastId) headers['Last-Event-ID'] = lastId;
    try {
      const res = await fetch(path, { headers, signal });
      if (!res.ok) throw new APIError(res.status, await res.json());
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const chunk = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let type = 'message', data = '', id = '';
          for (const line of chunk.split('\n')) {
            if (line.startsWith('event: ')) type = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
            else if (line.startsWith('id: ')) id = line.slice(4);
          }
          if (id) lastId = id;
          if (data) await onEvent(type, data);
          if (type === 'end') { await reader.cancel(); return; }
        }
      }
    } catch (err) {
      if (err.name === 'AbortError') return;
      if (err instanceof APIError || attempt >= 30) throw err;
    }
    await new Promise(r => setTimeout(r, 2000));
    if (signal.aborted) return;
  }
}

async function pageHistory(_, signal) {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  const [scenarios, windows, all] = await Promise.all([api('GET', '/v1/scenarios', undefined, signal), api('GET', '/v1/windows', undefined, signal), states()]);
  const sc = h('select', { id: 'f-scenario' }, h('option', { value: '' }, 'any scenario'), scenarios.map(s => h('option', { value: s.file, selected: s.file === q.get('scenario') }, s.file)));
  const st = h('select', { id: 'f-state' }, h('option', { value: '' }, 'any state'), all.map(s => h('option', { value: s.state, selected: s.state === q.get('state') }, s.state)));
  const wn = h('select', { id: 'f-window' }, h('option', { value: '' }, 'any window'), windows.map(w => h('option', { value: w.name, selected: w.name === q.get('window') }, w.name)));
  const table = h('div');
  const row = j => h('tr', { 'data-job': j.id }, h('td', {}, h('a', { href: '#/job/' + encodeURIComponent(j.id) }, j.id)), h('td', {}, j.kind), h('td', {}, badge(j.state), jobAgentGone(j), lossNote(j, 'div')),
    h('td', {}, (j.scenario || '-') + (j.job ? ' · ' + j.job : '')), h('td', {}, j.window || '-'), h('td', {}, (j.agents || []).join(', ')),
    h('td', {}, specTime(j), h('div', {}, submitter(j, false))));
  // The API answers a page of jobs, newest first, and names the next one
  // (Link): More appends it. #/history?limit=N asks for pages of N.
  const load = async () => {
    const p = new URLSearchParams();
    if (sc.value) p.set('scenario', sc.value);
    if (st.value) p.set('state', st.value);
    if (wn.value) p.set('window', wn.value);
    if (q.get('limit')) p.set('limit', q.get('limit'));
    const first = await request('GET', '/v1/jobs?' + p, undefined, signal);
    if (!first.data.length) { table.replaceChildren(h('p', { class: 'muted' }, 'No job matches.')); return; }
    const seen = new Set();
    const rows = h('tbody');
    const count = h('span', { class: 'muted', id: 'jobs-count' });
    const more = h('button', { type: 'button', class: 'secondary', id: 'jobs-more' }, 'More');
    let next = null;
    const add = page => {
      // A job is listed once, even if it moved between two pages.
      rows.append(...page.data.filter(j => !seen.has(j.id)).map(j => { seen.add(j.id); return row(j); }));
      next = nextPage(page.res);
      more.hidden = !next;
      count.textContent = seen.size + (next ? ' newest jobs shown' : (seen.size === 1 ? ' job' : ' jobs'));
    };
    more.addEventListener('click', async () => {
      more.disabled = true;
      try { add(await request('GET', next, undefined, signal)); }
      catch (err) { if (err.name !== 'AbortError') table.append(errorBox(err)); }
      more.disabled = false;
    });
    add(first);
    table.replaceChildren(h('table', { id: 'jobs' }, h('thead', {}, h('tr', {}, ['Job', 'Kind', 'State', 'Scenario', 'Window', 'Agents', 'Submitted'].map(t => h('th', {}, t)))), rows),
      h('p', { class: 'row' }, more, count));
  };
  for (const el of [sc, st, wn]) el.addEventListener('change', () => load().catch(err => table.replaceChildren(errorBox(err))));
  main.replaceChildren(h('h1', {}, 'History'), h('div', { class: 'card row' }, sc, st, wn), table);
  await load();
}

document.getElementById('logout').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(TOKEN_KEY + '.name');
  sessionStorage.removeItem(TOKEN_KEY + '.scopes');
  location.hash = '#/login';
});
window.addEventListener('hashchange', route);
route();
