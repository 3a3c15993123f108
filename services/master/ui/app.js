// Tessera web UI. Plain JavaScript, no framework, nothing fetched but this
// master's own API (and the apps framework's /v2 it serves, and an agent's
// /files/read for a task's log).
//
// Model: one SUBSCRIBE stream (POST /api/v1 {"type":"SUBSCRIBE"}, RecordIO)
// feeds everything. Its first record, SUBSCRIBED, carries a whole get_state
// snapshot; every later event (TASK_ADDED, TASK_UPDATED, AGENT_*,
// FRAMEWORK_*, HEARTBEAT) is applied to the copy kept here, in sequence. A
// stream that ends, errs, skips a sequence number or goes silent for three
// heartbeats is dropped and opened again with a jittered exponential backoff;
// the next SUBSCRIBED replaces the copy whole. GET_STATE is never polled.
//
// What the stream does not carry, and where it comes from instead:
//   - roles' weights, quotas and offered resources: GET_ROLES, asked when
//     the stream (re)starts, when the overview or roles page opens, after
//     this UI changes a weight or quota, and at most every few seconds after
//     task or framework events while one of those pages is shown;
//   - what is used on each agent: summed here from the live tasks (an
//     agent's record is re-sent only when its state changes);
//   - a task's stdout/stderr: its agent's GET /files/read, every second;
//   - the apps framework's apps, deployments and launch queue: its
//     Marathon-style GET /v2/... on this same origin, every 2 s while the
//     apps page is shown (docs/apps.md).
//
// Credentials: when an API answers 401, a prompt asks for a bearer token
// (`tessera token create`); it is kept in sessionStorage (this tab only) and
// sent as "Authorization: Bearer" on every request, the stream and the
// agents' /files/read included. A 403 shows the API's reason as any error.
//
// Pages (hash routes): #/ overview, #/agents, #/frameworks,
// #/tasks[?state=&framework=&agent=&q=], #/tasks/<framework>/<task>, #/roles,
// #/apps[?app=<app id>].
'use strict';

(() => {
  // -- constants --------------------------------------------------------------

  const TASK_STATES = [
    'TASK_STAGING', 'TASK_STARTING', 'TASK_RUNNING', 'TASK_KILLING', 'TASK_FINISHED',
    'TASK_FAILED', 'TASK_KILLED', 'TASK_ERROR', 'TASK_LOST', 'TASK_DROPPED',
    'TASK_UNREACHABLE', 'TASK_GONE', 'TASK_UNKNOWN',
  ];
  // As services/common/wire.cpp is_terminal().
  const TERMINAL = new Set([
    'TASK_FINISHED', 'TASK_FAILED', 'TASK_KILLED', 'TASK_ERROR', 'TASK_LOST', 'TASK_DROPPED',
    'TASK_GONE', 'TASK_GONE_BY_OPERATOR',
  ]);
  const RESOURCES = ['cpus', 'mem', 'disk', 'gpus'];
  const COMPLETED_TASKS_KEPT = 5000;   // terminal tasks this page remembers
  const COMPLETED_FRAMEWORKS_KEPT = 500;
  const TASK_ROWS_STEP = 500;          // rows shown at once on #/tasks
  const LOG_CHUNK = 256 * 1024;        // bytes per /files/read
  const LOG_KEEP_CHARS = 512 * 1024;   // characters a log pane keeps
  const LOG_START_BYTES = 256 * 1024;  // of a long file, the tail shown first
  const ROLES_REFRESH_MS = 1000;

  // -- the cluster, as the stream tells it ------------------------------------

  const state = {
    conn: 'connecting',       // connecting | live | reconnecting
    connDetail: '',
    haveSnapshot: false,      // a SUBSCRIBED has been applied since the page loaded
    sequence: null,           // of the last event applied
    heartbeatSeconds: 15,
    agents: new Map(),        // id -> agent record (GET_AGENTS shape)
    frameworks: new Map(),    // id -> framework record (GET_FRAMEWORKS shape)
    completedFrameworks: new Map(),  // id -> framework record or {framework_info}
    tasks: new Map(),         // taskKey(fid, tid) -> task record (GET_TASKS shape)
    roles: null,              // GET_ROLES answer (get_roles.roles), or null
    rolesAt: null,            // Date of that answer
    rolesError: '',
  };

  const taskKey = (fid, tid) => fid + '\u0001' + tid;
  const val = (x) => (x && typeof x === 'object' ? x.value : x) || '';
  const agentId = (a) => val(a.agent_info && a.agent_info.id);
  const frameworkId = (f) => val(f.framework_info && f.framework_info.id);

  // -- small helpers ----------------------------------------------------------

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  function esc(s) {
    return String(s ?? '').replace(/[&<>"']/g, (c) => ({
      '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
    })[c]);
  }

  const round3 = (x) => Math.round(x * 1000) / 1000;

  // Sums a resource list's scalars by name (reservations ignored).
  function scalars(list) {
    const out = {};
    for (const r of list || []) {
      if (r && r.type === 'SCALAR' && r.scalar && typeof r.scalar.value === 'number')
        out[r.name] = round3((out[r.name] || 0) + r.scalar.value);
    }
    return out;
  }

  function addInto(acc, add) {
    for (const [k, v] of Object.entries(add)) acc[k] = round3((acc[k] || 0) + v);
    return acc;
  }

  function trimNum(x, digits = 2) {
    if (x == null || Number.isNaN(x)) return '–';
    return Number(x.toFixed(digits)).toString();
  }

  function fmtMB(mb) {
    if (mb >= 1024 * 1024) return trimNum(mb / (1024 * 1024), 1) + ' TB';
    if (mb >= 1024) return trimNum(mb / 1024, 1) + ' GB';
    return trimNum(mb, 0) + ' MB';
  }

  function fmtRes(name, v) {
    if (v == null) return '–';
    if (name === 'mem' || name === 'disk') return fmtMB(v);
    return trimNum(v, 2);
  }

  const pad = (n, w = 2) => String(n).padStart(w, '0');

  function fmtDate(d, withMs = false) {
    if (!(d instanceof Date) || Number.isNaN(d.getTime())) return '–';
    const now = new Date();
    const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` +
      (withMs ? '.' + pad(d.getMilliseconds(), 3) : '');
    if (d.toDateString() === now.toDateString()) return time;
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
  }
  const fromSeconds = (s) => (typeof s === 'number' && s > 0 ? new Date(s * 1000) : null);
  const fromNanos = (n) => (n && typeof n.nanoseconds === 'number' && n.nanoseconds > 0
    ? new Date(n.nanoseconds / 1e6) : null);

  function stateClass(s) {
    switch (s) {
      case 'TASK_RUNNING': case 'REGISTERED': return 'ok';
      case 'TASK_FINISHED': return 'info';
      case 'TASK_STAGING': case 'TASK_STARTING': case 'TASK_KILLING': case 'DRAINING':
      case 'ADMITTING': case 'DISCONNECTED': case 'TASK_UNREACHABLE': case 'UNREACHABLE':
        return 'warn';
      case 'TASK_FAILED': case 'TASK_ERROR': case 'TASK_LOST': case 'TASK_DROPPED':
      case 'TASK_GONE': case 'REMOVING': return 'bad';
      default: return 'idle';
    }
  }
  const badge = (text, cls) => `<span class="badge ${cls || stateClass(text)}">${esc(text)}</span>`;

  function toast(message, ok = true) {
    const el = document.createElement('div');
    el.className = 'toast ' + (ok ? 'ok' : 'bad');
    el.textContent = message;
    el.title = 'Click to dismiss';
    el.addEventListener('click', () => el.remove());
    $('#toasts').appendChild(el);
    setTimeout(() => el.remove(), ok ? 4000 : 9000);
  }

  // -- credentials -------------------------------------------------------------

  const TOKEN_KEY = 'tessera.token';
  const authWaiters = [];
  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }
  // headers plus the Authorization header, when there is a token.
  function withAuth(headers = {}) {
    const t = token();
    return t ? { ...headers, Authorization: `Bearer ${t}` } : headers;
  }
  // After a 401: forgets the token, shows the prompt, resolves once a new
  // token is entered (every caller waiting shares the one prompt).
  function needToken(why) {
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* private mode */ }
    $('#auth-why').textContent = why ? `The API answered: ${why}` : 'This master needs a token.';
    $('#auth').hidden = false;
    $('#auth-token').focus();
    return new Promise((resolve) => authWaiters.push(resolve));
  }
  $('#auth-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = $('#auth-token').value.trim();
    if (!t) return;
    try { sessionStorage.setItem(TOKEN_KEY, t); } catch (err) { /* private mode */ }
    $('#auth-token').value = '';
    $('#auth').hidden = true;
    authWaiters.splice(0).forEach((resolve) => resolve());
  });
  // The error text of a refused response's JSON body.
  async function reasonOf(r) {
    try {
      const body = await r.clone().json();
      return body.error || body.message || r.statusText;
    } catch (e) { return r.statusText; }
  }
  // fetch, asking for a token and trying again while the API answers 401.
  async function authFetch(url, init = {}) {
    for (;;) {
      const r = await fetch(url, { ...init, headers: withAuth(init.headers || {}) });
      if (r.status !== 401) return r;
      await needToken(await reasonOf(r));
    }
  }

  // POST /api/v1; resolves with the parsed answer, rejects with the API's error.
  async function api(call) {
    const r = await authFetch('/api/v1', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(call),
      cache: 'no-store',
    });
    const text = await r.text();
    let body = null;
    try { body = text ? JSON.parse(text) : {}; } catch (e) { body = null; }
    if (!r.ok) {
      const why = body && body.error ? body.error : text || r.statusText;
      throw new Error(`${call.type}: ${r.status} ${why}`);
    }
    return body || {};
  }

  // -- RecordIO ---------------------------------------------------------------

  // Splits a byte stream of "<decimal length>\n<bytes>" records into strings.
  class RecordIOParser {
    constructor() {
      this.buf = new Uint8Array(64 * 1024);
      this.start = 0;
      this.end = 0;
      this.need = -1;  // length of the record being read, -1 while reading a header
      this.decoder = new TextDecoder('utf-8');
    }

    reserve(n) {
      if (this.end + n <= this.buf.length) return;
      const live = this.end - this.start;
      if (live + n <= this.buf.length / 2) {
        this.buf.copyWithin(0, this.start, this.end);
      } else {
        const bigger = new Uint8Array(Math.max(this.buf.length * 2, live + n));
        bigger.set(this.buf.subarray(this.start, this.end));
        this.buf = bigger;
      }
      this.start = 0;
      this.end = live;
    }

    push(chunk) {
      this.reserve(chunk.length);
      this.buf.set(chunk, this.end);
      this.end += chunk.length;
      const records = [];
      for (;;) {
        if (this.need < 0) {
          const nl = this.buf.subarray(this.start, this.end).indexOf(10);
          if (nl < 0) {
            if (this.end - this.start > 20) throw new Error('bad RecordIO header');
            break;
          }
          const header = this.decoder.decode(this.buf.subarray(this.start, this.start + nl)).trim();
          if (!/^\d{1,15}$/.test(header)) throw new Error(`bad RecordIO header '${header.slice(0, 20)}'`);
          this.need = parseInt(header, 10);
          this.start += nl + 1;
        }
        if (this.end - this.start < this.need) break;
        records.push(this.decoder.decode(this.buf.subarray(this.start, this.start + this.need)));
        this.start += this.need;
        this.need = -1;
      }
      if (this.start === this.end) this.start = this.end = 0;
      return records;
    }
  }

  // -- the SUBSCRIBE stream ---------------------------------------------------

  function setConn(conn, detail = '') {
    state.conn = conn;
    state.connDetail = detail;
    const el = $('#conn');
    el.className = 'conn ' + conn;
    el.textContent = conn;
    el.title = {
      live: 'Subscribed to the master\'s event stream',
      connecting: 'Connecting to the master\'s event stream',
      reconnecting: 'The event stream is down; reconnecting',
    }[conn] + (detail ? ` — ${detail}` : '');
    const stale = conn !== 'live' && state.haveSnapshot;
    $('#stale').hidden = !stale;
    document.body.classList.toggle('is-stale', stale);
  }

  function setSequence(n) {
    state.sequence = n;
    const el = $('#seq');
    el.textContent = `seq ${n}`;
    el.dataset.sequence = String(n);
  }

  async function streamForever() {
    let failures = 0;
    for (;;) {
      const started = Date.now();
      let reason;
      try {
        await streamOnce();
        reason = 'the master ended the stream';
      } catch (e) {
        reason = e && e.message ? e.message : String(e);
      }
      // A stream that stayed up a while starts the backoff over.
      if (state.conn === 'live' && Date.now() - started > 10000) failures = 0;
      const delay = Math.min(15000, 500 * 2 ** failures) * (0.75 + Math.random() * 0.5);
      failures = Math.min(failures + 1, 10);
      const retryAt = Date.now() + delay;
      setConn('reconnecting', `${reason}; retrying in ${Math.ceil(delay / 1000)} s`);
      console.warn('tessera: event stream down:', reason);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, retryAt - Date.now())));
    }
  }

  async function streamOnce() {
    const abort = new AbortController();
    let watchdog = null;
    let silentReason = '';
    const arm = () => {
      clearTimeout(watchdog);
      const ms = Math.max(20, 3 * state.heartbeatSeconds) * 1000;
      watchdog = setTimeout(() => {
        silentReason = `no event or heartbeat for ${Math.round(ms / 1000)} s`;
        abort.abort();
      }, ms);
    };
    arm();
    try {
      const r = await authFetch('/api/v1', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/recordio' },
        body: JSON.stringify({ type: 'SUBSCRIBE' }),
        cache: 'no-store',
        signal: abort.signal,
      });
      if (!r.ok) {
        let why = '';
        try { why = (await r.json()).error || ''; } catch (e) { /* not JSON */ }
        throw new Error(`SUBSCRIBE answered ${r.status}${why ? ': ' + why : ''}`);
      }
      if (!r.body) throw new Error('this browser cannot read a streamed response');
      const reader = r.body.getReader();
      const parser = new RecordIOParser();
      let first = true;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        arm();
        for (const text of parser.push(value)) {
          const event = JSON.parse(text);
          if (first) {
            if (event.type !== 'SUBSCRIBED') throw new Error(`the stream began with ${event.type}`);
            first = false;
          }
          applyEvent(event);
        }
      }
    } catch (e) {
      if (silentReason) throw new Error(silentReason);
      throw e;
    } finally {
      clearTimeout(watchdog);
      abort.abort();
    }
  }

  function applyEvent(e) {
    if (e.type === 'SUBSCRIBED') {
      applySnapshot(e.subscribed || {});
      setSequence(typeof e.sequence === 'number' ? e.sequence : 0);
      setConn('live');
      refreshRoles(true);
      renderSoon();
      return;
    }
    if (typeof e.sequence === 'number') {
      if (state.sequence != null && e.sequence !== state.sequence + 1)
        throw new Error(`sequence gap: ${state.sequence} then ${e.sequence}`);
      setSequence(e.sequence);
    }
    switch (e.type) {
      case 'HEARTBEAT':
        return;
      case 'TASK_ADDED':
        putTask(e.task_added && e.task_added.task);
        break;
      case 'TASK_UPDATED':
        updateTask(e.task_updated || {});
        break;
      case 'AGENT_ADDED':
        putAgent(e.agent_added && e.agent_added.agent);
        break;
      case 'AGENT_UPDATED':
        putAgent(e.agent_updated && e.agent_updated.agent);
        break;
      case 'AGENT_REMOVED':
        state.agents.delete(val(e.agent_removed && e.agent_removed.agent_id));
        break;
      case 'FRAMEWORK_ADDED':
        putFramework(e.framework_added && e.framework_added.framework);
        break;
      case 'FRAMEWORK_UPDATED':
        putFramework(e.framework_updated && e.framework_updated.framework);
        break;
      case 'FRAMEWORK_REMOVED': {
        const info = (e.framework_removed && e.framework_removed.framework_info) || {};
        const id = val(info.id);
        const last = state.frameworks.get(id);
        state.frameworks.delete(id);
        const record = last ? { ...last, framework_info: info, active: false, connected: false }
          : { framework_info: info };
        state.completedFrameworks.set(id, record);
        for (const old of state.completedFrameworks.keys()) {  // the oldest go first
          if (state.completedFrameworks.size <= COMPLETED_FRAMEWORKS_KEPT) break;
          state.completedFrameworks.delete(old);
        }
        break;
      }
      case 'ROLE_UPDATED':
        break;  // a weight or quota changed (by anyone): GET_ROLES again, below
      default:
        console.info('tessera: ignoring event', e.type);
        return;
    }
    if (e.type.startsWith('TASK_') || e.type.startsWith('FRAMEWORK_') || e.type === 'ROLE_UPDATED') {
      rolesMayHaveChanged();
    }
    renderSoon();
  }

  function applySnapshot(s) {
    const st = s.get_state || {};
    if (typeof s.heartbeat_interval_seconds === 'number' && s.heartbeat_interval_seconds > 0)
      state.heartbeatSeconds = s.heartbeat_interval_seconds;
    state.agents.clear();
    state.frameworks.clear();
    state.completedFrameworks.clear();
    state.tasks.clear();
    for (const a of (st.get_agents && st.get_agents.agents) || []) putAgent(a);
    const fw = st.get_frameworks || {};
    for (const f of fw.frameworks || []) putFramework(f);
    for (const f of fw.completed_frameworks || []) state.completedFrameworks.set(frameworkId(f), f);
    const tasks = st.get_tasks || {};
    for (const t of tasks.completed_tasks || []) putTask(t);
    for (const t of tasks.tasks || []) putTask(t);
    state.haveSnapshot = true;
  }

  function putAgent(a) {
    if (!a) return;
    state.agents.set(agentId(a), a);
  }

  function putFramework(f) {
    if (!f) return;
    const id = frameworkId(f);
    state.completedFrameworks.delete(id);
    state.frameworks.set(id, f);
  }

  function lastTimestamp(t) {
    const s = t.statuses || [];
    return s.length ? s[s.length - 1].timestamp || 0 : 0;
  }

  function putTask(t) {
    if (!t) return;
    t._updated = lastTimestamp(t);
    t._res = scalars(t.resources);
    state.tasks.set(taskKey(val(t.framework_id), val(t.task_id)), t);
  }

  function updateTask(u) {
    const status = u.status || {};
    const fid = val(u.framework_id);
    const tid = val(status.task_id);
    const key = taskKey(fid, tid);
    let t = state.tasks.get(key);
    if (!t) {  // an update for a task this copy never saw: keep what it says
      t = { task_id: { value: tid }, framework_id: { value: fid }, name: '', resources: [], statuses: [], _res: {} };
      state.tasks.set(key, t);
    }
    t.state = u.state || status.state || t.state;
    if (u.agent_id) t.agent_id = u.agent_id;
    if (status.executor_id) t.executor_id = status.executor_id;
    t.statuses = (t.statuses || []).concat([status]).slice(-50);
    t._updated = status.timestamp || t._updated;
  }

  // Keeps the newest COMPLETED_TASKS_KEPT terminal tasks (checked every
  // few seconds: a scan per event would cost a large snapshot dearly).
  setInterval(forgetOldTasks, 10000);
  function forgetOldTasks() {
    if (state.tasks.size <= COMPLETED_TASKS_KEPT) return;
    const done = [...state.tasks.entries()].filter(([, t]) => TERMINAL.has(t.state));
    if (done.length <= COMPLETED_TASKS_KEPT) return;
    done.sort((a, b) => a[1]._updated - b[1]._updated);
    for (const [key] of done.slice(0, done.length - COMPLETED_TASKS_KEPT)) state.tasks.delete(key);
    renderSoon();
  }

  // -- GET_ROLES (weights, quotas, offers: not in the stream) -----------------

  let rolesInFlight = false;
  let rolesAgain = false;
  let rolesTimer = null;

  async function refreshRoles(now = false) {
    if (!now) return rolesMayHaveChanged();
    if (rolesInFlight) { rolesAgain = true; return; }
    rolesInFlight = true;
    try {
      const answer = await api({ type: 'GET_ROLES' });
      state.roles = (answer.get_roles && answer.get_roles.roles) || [];
      state.rolesAt = new Date();
      state.rolesError = '';
    } catch (e) {
      state.rolesError = e.message;
    } finally {
      rolesInFlight = false;
    }
    renderSoon();
    if (rolesAgain) { rolesAgain = false; refreshRoles(true); }
  }

  // After task or framework events, while a page that shows roles is open.
  function rolesMayHaveChanged() {
    if (!['overview', 'roles'].includes(current.name) || rolesTimer) return;
    rolesTimer = setTimeout(() => { rolesTimer = null; refreshRoles(true); }, ROLES_REFRESH_MS);
  }

  // -- derived books ----------------------------------------------------------

  const isLive = (t) => !TERMINAL.has(t.state);

  function books() {
    const byAgent = new Map();      // agent id -> {res, tasks}
    const byFramework = new Map();  // framework id -> {res, tasks}
    const byRole = new Map();       // role -> res
    const used = {};
    const states = {};
    for (const t of state.tasks.values()) {
      states[t.state] = (states[t.state] || 0) + 1;
      if (!isLive(t)) continue;
      const r = t._res || (t._res = scalars(t.resources));
      addInto(used, r);
      const a = val(t.agent_id);
      if (!byAgent.has(a)) byAgent.set(a, { res: {}, tasks: 0 });
      addInto(byAgent.get(a).res, r);
      byAgent.get(a).tasks++;
      const f = val(t.framework_id);
      if (!byFramework.has(f)) byFramework.set(f, { res: {}, tasks: 0 });
      addInto(byFramework.get(f).res, r);
      byFramework.get(f).tasks++;
      const role = t.role || '*';
      if (!byRole.has(role)) byRole.set(role, {});
      addInto(byRole.get(role), r);
    }
    return { byAgent, byFramework, byRole, used, states };
  }

  function frameworkName(id) {
    const f = state.frameworks.get(id) || state.completedFrameworks.get(id);
    return f && f.framework_info ? f.framework_info.name || '' : '';
  }

  function agentLabel(id) {
    const a = state.agents.get(id);
    return a && a.agent_info ? a.agent_info.hostname || id : id;
  }

  // -- rendering ---------------------------------------------------------------

  // Renders are coalesced; a page that takes long to render (a very large
  // cluster) is rendered less often, so the stream is never starved.
  let renderTimer = null;
  let renderDelay = 60;
  function renderSoon() {
    if (renderTimer) return;
    renderTimer = setTimeout(() => {
      renderTimer = null;
      const started = performance.now();
      try {
        if (current.view && current.view.update) current.view.update();
      } catch (e) {
        console.error(e);
      }
      renderDelay = Math.min(2000, Math.max(60, 4 * (performance.now() - started)));
    }, renderDelay);
  }

  // Brings tbody's rows in line with items, reusing each row by key and
  // rewriting a row only when its HTML changed. opts: key(item), row(item)
  // (HTML) or cells(item) (td nodes), attrs(item), columns, empty.
  function syncRows(tbody, items, opts) {
    const existing = new Map();
    for (const tr of Array.from(tbody.children)) {
      if (tr.dataset.key != null) existing.set(tr.dataset.key, tr);
      else tr.remove();
    }
    let prev = null;
    for (const item of items) {
      const key = opts.key(item);
      let tr = existing.get(key);
      if (tr) existing.delete(key);
      else {
        tr = document.createElement('tr');
        tr.dataset.key = key;
      }
      const attrs = opts.attrs ? opts.attrs(item) : {};
      for (const [k, v] of Object.entries(attrs)) if (tr.getAttribute(k) !== v) tr.setAttribute(k, v);
      // Rows come as HTML (opts.row) or as cells built as nodes (opts.cells).
      const cells = opts.cells ? opts.cells(item) : null;
      const html = cells ? cells.map((c) => c.outerHTML).join('') : opts.row(item);
      if (tr._html !== html) {
        if (cells) tr.replaceChildren(...cells);
        else tr.innerHTML = html;
        tr._html = html;
      }
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== tr) tbody.insertBefore(tr, want);
      prev = tr;
    }
    for (const tr of existing.values()) tr.remove();
    if (!items.length) {
      const tr = document.createElement('tr');
      tr.innerHTML = `<td class="empty" colspan="${opts.columns}">${esc(opts.empty || 'Nothing here.')}</td>`;
      tbody.appendChild(tr);
    }
  }

  // Click-to-sort headers (th[data-sort]); sort = {key, dir}.
  function sortable(table, sort, onChange) {
    table.tHead.addEventListener('click', (ev) => {
      const th = ev.target.closest('th[data-sort]');
      if (!th) return;
      if (sort.key === th.dataset.sort) sort.dir = -sort.dir;
      else { sort.key = th.dataset.sort; sort.dir = th.dataset.dir === 'desc' ? -1 : 1; }
      onChange();
    });
  }

  function sortItems(items, sort, keys, table) {
    const get = keys[sort.key];
    if (get) {
      items.sort((a, b) => {
        const x = get(a), y = get(b);
        if (x === y) return 0;
        if (typeof x === 'number' && typeof y === 'number') return (x - y) * sort.dir;
        return String(x).localeCompare(String(y), undefined, { numeric: true }) * sort.dir;
      });
    }
    if (table) {
      for (const th of $$('th[data-sort]', table)) {
        th.classList.toggle('sorted-asc', th.dataset.sort === sort.key && sort.dir > 0);
        th.classList.toggle('sorted-desc', th.dataset.sort === sort.key && sort.dir < 0);
      }
    }
    return items;
  }

  function usageBar(used, total, offered = 0) {
    if (!total) return '<div class="bar"></div>';
    const u = Math.min(100, (used / total) * 100);
    const o = Math.min(100 - u, (offered / total) * 100);
    return `<div class="bar${used > total ? ' over' : ''}"><span class="used" style="width:${u}%"></span>` +
      `<span class="offered" style="left:${u}%;width:${o}%"></span></div>`;
  }

  function usedOfTotal(name, used, total) {
    return `<span data-used="${used || 0}" data-total="${total || 0}">${esc(fmtRes(name, used || 0))}` +
      ` <span class="muted">/ ${esc(fmtRes(name, total || 0))}</span></span>`;
  }

  const waiting = () => (state.haveSnapshot ? '' :
    '<p class="muted" id="waiting">Waiting for the master\'s event stream…</p>');

  // -- page: overview ----------------------------------------------------------

  const overview = {
    mount(main) {
      main.innerHTML = `
        <h1>Cluster overview</h1>
        <div id="overview-wait"></div>
        <div class="cards">
          <div class="card" id="stat-agents"><div class="label">Agents</div><div class="value">–</div><div class="detail"></div></div>
          <div class="card" id="stat-frameworks"><div class="label">Frameworks</div><div class="value">–</div><div class="detail"></div></div>
          <div class="card" id="stat-tasks"><div class="label">Live tasks</div><div class="value">–</div><div class="detail"></div></div>
          <div class="card" id="stat-cpus"><div class="label">CPUs used</div><div class="value">–</div><div class="detail"></div></div>
        </div>
        <h2>Resources</h2>
        <div class="panel">
          <table id="resources">
            <thead><tr><th>Resource</th><th class="num">Total</th><th class="num">Used</th>
              <th class="num">Offered</th><th class="num">Free</th><th>Utilisation</th></tr></thead>
            <tbody></tbody>
          </table>
        </div>
        <div class="legend"><i style="background:var(--accent)"></i>used<i style="background:#93c5fd"></i>offered
          <span class="note">— used: summed from the live tasks on the stream; offered: from GET_ROLES (see below)</span></div>
        <h2>By role</h2>
        <div class="panel">
          <table id="overview-roles">
            <thead><tr><th>Role</th><th class="num">Weight</th><th class="num">CPUs allocated</th>
              <th class="num">Mem allocated</th><th class="num">CPUs offered</th><th>Quota</th><th>Quota consumed</th></tr></thead>
            <tbody></tbody>
          </table>
        </div>
        <div class="note" id="overview-roles-note"></div>
        <h2>Tasks by state</h2>
        <div class="panel"><table id="task-states"><thead><tr><th>State</th><th class="num">Tasks</th></tr></thead><tbody></tbody></table></div>`;
      refreshRoles(true);
    },
    update() {
      $('#overview-wait').innerHTML = waiting();
      const b = books();
      const agents = [...state.agents.values()];
      const total = {};
      for (const a of agents) addInto(total, scalars(a.total_resources));
      // Offers are not on the stream (and a framework's record keeps the
      // offers of its last update): GET_ROLES's are the freshest there are.
      const offered = {};
      for (const r of state.roles || []) addInto(offered, scalars(r.offered));
      const active = agents.filter((a) => a.active).length;
      const draining = agents.filter((a) => a.drain_info && a.drain_info.state !== 'NONE').length;
      const card = (id, value, detail) => {
        const el = $('#' + id);
        $('.value', el).textContent = value;
        el.dataset.value = String(value);
        $('.detail', el).textContent = detail;
      };
      card('stat-agents', agents.length, `${active} active` + (draining ? `, ${draining} draining/drained` : ''));
      const fws = [...state.frameworks.values()];
      card('stat-frameworks', fws.length, `${fws.filter((f) => f.connected).length} connected, ` +
        `${state.completedFrameworks.size} completed`);
      const live = [...state.tasks.values()].filter(isLive).length;
      card('stat-tasks', live, `${(b.states.TASK_RUNNING || 0)} running, ${state.tasks.size - live} completed`);
      card('stat-cpus', trimNum(b.used.cpus || 0), `of ${trimNum(total.cpus || 0)} total`);

      syncRows($('#resources tbody'), RESOURCES, {
        key: (n) => n,
        columns: 6,
        attrs: (n) => ({ 'data-resource': n }),
        row: (n) => {
          const t = total[n] || 0, u = b.used[n] || 0, o = state.roles ? offered[n] || 0 : null;
          const free = Math.max(0, round3(t - u - (o || 0)));
          const cell = (cls, v) => `<td class="num ${cls}" data-value="${v ?? ''}">${esc(fmtRes(n, v))}</td>`;
          return `<td><b>${esc(n)}</b></td>${cell('total', t)}${cell('used', u)}${cell('offered', o)}${cell('free', free)}` +
            `<td>${usageBar(u, t, o)}</td>`;
        },
      });

      const roles = roleRows(b);
      syncRows($('#overview-roles tbody'), roles, {
        key: (r) => r.name,
        columns: 7,
        empty: 'No roles yet.',
        attrs: (r) => ({ 'data-role': r.name }),
        row: (r) => {
          const q = r.quota;
          const quotaText = q ? Object.entries(q).map(([k, v]) => `${k} ${fmtRes(k, v)}`).join(', ') : '–';
          let consumed = '<span class="muted">no quota</span>';
          if (q && Object.keys(q).length) {
            consumed = Object.entries(q).map(([k, v]) =>
              `<div class="nowrap">${esc(k)}: ${esc(fmtRes(k, r.allocated[k] || 0))} / ${esc(fmtRes(k, v))} ` +
              `(${v ? Math.round(((r.allocated[k] || 0) / v) * 100) : 0}%)${usageBar(r.allocated[k] || 0, v)}</div>`).join('');
          }
          return `<td><a href="#/roles">${esc(r.name)}</a></td><td class="num">${esc(r.weight == null ? '–' : trimNum(r.weight, 3))}</td>` +
            `<td class="num">${esc(fmtRes('cpus', r.allocated.cpus || 0))}</td>` +
            `<td class="num">${esc(fmtRes('mem', r.allocated.mem || 0))}</td>` +
            `<td class="num">${r.offered ? esc(fmtRes('cpus', r.offered.cpus || 0)) : '–'}</td>` +
            `<td class="quota">${esc(quotaText)}</td><td class="consumed">${consumed}</td>`;
        },
      });
      $('#overview-roles-note').textContent = rolesNote();

      const counts = TASK_STATES.filter((s) => b.states[s]).map((s) => [s, b.states[s]]);
      syncRows($('#task-states tbody'), counts, {
        key: (c) => c[0],
        columns: 2,
        empty: 'No tasks yet.',
        attrs: (c) => ({ 'data-state': c[0] }),
        row: (c) => `<td><a href="#/tasks?state=${encodeURIComponent(c[0])}">${badge(c[0])}</a></td><td class="num">${c[1]}</td>`,
      });
    },
  };

  // Roles: GET_ROLES's weights, quotas and offers, with allocations from the
  // live tasks of the stream (fresher than the last GET_ROLES).
  function roleRows(b) {
    const rows = new Map();
    const row = (name) => {
      if (!rows.has(name)) rows.set(name, { name, weight: null, quota: null, allocated: {}, offered: null, frameworks: new Set() });
      return rows.get(name);
    };
    for (const r of state.roles || []) {
      const x = row(r.name);
      x.weight = r.weight;
      x.offered = scalars(r.offered);
      if (r.quota) x.quota = scalars(r.quota.limit);
      for (const f of r.frameworks || []) x.frameworks.add(val(f));
    }
    for (const f of state.frameworks.values()) {
      for (const role of (f.framework_info && f.framework_info.roles) || []) row(role).frameworks.add(frameworkId(f));
    }
    for (const [name, res] of b.byRole) row(name).allocated = res;
    return [...rows.values()].sort((x, y) => x.name.localeCompare(y.name));
  }

  function rolesNote() {
    if (state.rolesError) return `Weights, quotas and offers unavailable: ${state.rolesError}`;
    if (!state.rolesAt) return 'Weights, quotas and offers: loading (GET_ROLES)…';
    return `Weights, quotas and offers as of ${fmtDate(state.rolesAt)} (GET_ROLES, asked again on ROLE_UPDATED and task changes: offers are not events); ` +
      'allocations are live from the stream.';
  }

  // -- page: agents --------------------------------------------------------------

  const agentsPage = {
    sort: { key: 'hostname', dir: 1 },
    mount(main) {
      main.innerHTML = `
        <h1>Agents <span class="sub" id="agents-count"></span></h1>
        <div id="agents-wait"></div>
        <div class="panel">
          <table id="agents">
            <thead><tr>
              <th data-sort="id">ID</th><th data-sort="hostname">Host</th><th data-sort="state">State</th>
              <th data-sort="drain">Drain</th><th data-sort="reserved">Reserved for</th>
              <th data-sort="tasks" data-dir="desc" class="num">Tasks</th>
              <th data-sort="cpus" data-dir="desc">CPUs used / total</th><th data-sort="mem" data-dir="desc">Mem used / total</th>
              <th data-sort="disk" data-dir="desc">Disk used / total</th><th data-sort="gpus" data-dir="desc">GPUs</th>
              <th data-sort="registered">Registered</th><th>Actions</th>
            </tr></thead>
            <tbody></tbody>
          </table>
        </div>
        <p class="note">Drain: the agent's tasks are killed and it gets no new ones; once they are gone it is DRAINED.
          Deactivate: no new offers from it; its tasks keep running. Reactivate undoes both.</p>`;
      sortable($('#agents'), this.sort, () => this.update());
      $('#agents tbody').addEventListener('click', (ev) => {
        const btn = ev.target.closest('button[data-action]');
        if (!btn) return;
        agentAction(btn.dataset.action, btn.closest('tr').dataset.agentId, btn);
      });
    },
    update() {
      $('#agents-wait').innerHTML = waiting();
      const b = books();
      const agents = [...state.agents.values()];
      const usedOf = (a) => (b.byAgent.get(agentId(a)) || { res: {}, tasks: 0 });
      const totalOf = (a) => scalars(a.total_resources);
      sortItems(agents, this.sort, {
        id: agentId,
        hostname: (a) => a.agent_info.hostname || '',
        state: (a) => a.state || '',
        drain: (a) => (a.drain_info && a.drain_info.state) || '',
        reserved: (a) => reservedText(a),
        tasks: (a) => usedOf(a).tasks,
        cpus: (a) => usedOf(a).res.cpus || 0,
        mem: (a) => usedOf(a).res.mem || 0,
        disk: (a) => usedOf(a).res.disk || 0,
        gpus: (a) => totalOf(a).gpus || 0,
        registered: (a) => (a.registered_time && a.registered_time.nanoseconds) || 0,
      }, $('#agents'));
      $('#agents-count').textContent = `${agents.length}`;
      syncRows($('#agents tbody'), agents, {
        key: agentId,
        columns: 12,
        empty: 'No agents registered.',
        attrs: (a) => ({
          'data-agent-id': agentId(a),
          'data-state': a.state || '',
          'data-drain': (a.drain_info && a.drain_info.state) || 'NONE',
        }),
        row: (a) => {
          const id = agentId(a);
          const u = usedOf(a), t = totalOf(a);
          const drain = (a.drain_info && a.drain_info.state) || 'NONE';
          const stateBadges = badge(a.state || 'UNKNOWN') + (a.deactivated ? ' ' + badge('deactivated', 'idle') : '');
          const canDrain = drain === 'NONE' && a.state === 'REGISTERED';
          const res = (n) => `<td class="res ${n}">${usedOfTotal(n, u.res[n], t[n])}${usageBar(u.res[n] || 0, t[n] || 0)}</td>`;
          return `<td class="mono id nowrap">${esc(id)}</td>` +
            `<td class="hostname" title="${esc(a.pid || '')}${a.http_address ? ' · http ' + esc(a.http_address) : ''}">${esc(a.agent_info.hostname || '')}</td>` +
            `<td class="state">${stateBadges}</td>` +
            `<td class="drain">${drain === 'NONE' ? '<span class="muted">NONE</span>' : badge(drain)}</td>` +
            `<td class="reserved" title="dynamic (operator) reservations are marked *">${reservedText(a) ? esc(reservedText(a)) : '<span class="muted">–</span>'}</td>` +
            `<td class="num tasks"><a href="#/tasks?agent=${encodeURIComponent(id)}">${u.tasks}</a></td>` +
            res('cpus') + res('mem') + res('disk') +
            `<td class="res gpus">${t.gpus ? usedOfTotal('gpus', u.res.gpus, t.gpus) : '<span class="muted">–</span>'}</td>` +
            `<td class="nowrap">${esc(fmtDate(fromNanos(a.registered_time)))}</td>` +
            `<td class="actions">` +
            `<button data-action="drain" class="danger" ${canDrain ? '' : 'disabled'}>Drain</button>` +
            `<button data-action="deactivate" ${!a.deactivated && drain === 'NONE' ? '' : 'disabled'}>Deactivate</button>` +
            `<button data-action="reactivate" ${a.deactivated || drain !== 'NONE' ? '' : 'disabled'}>Reactivate</button>` +
            `</td>`;
        },
      });
    },
  };

  // An agent's reservations by role: "web: cpus 1.5, mem 512 MB*" (* dynamic:
  // an operator's RESERVE_RESOURCES; the rest are the agent's own --resources).
  function reservedText(a) {
    const byRole = new Map();
    for (const r of a.total_resources || []) {
      if (!r.role || r.role === '*' || r.type !== 'SCALAR') continue;
      if (!byRole.has(r.role)) byRole.set(r.role, []);
      byRole.get(r.role).push(`${r.name} ${fmtRes(r.name, r.scalar.value)}`);
    }
    const dynamic = new Set((a.dynamic_reservations || []).map((r) => r.role));
    return [...byRole.entries()].sort()
      .map(([role, items]) => `${role}: ${items.join(', ')}${dynamic.has(role) ? '*' : ''}`).join('; ');
  }

  async function agentAction(action, id, btn) {
    const calls = { drain: 'DRAIN_AGENT', deactivate: 'DEACTIVATE_AGENT', reactivate: 'REACTIVATE_AGENT' };
    const type = calls[action];
    if (!type) return;
    const host = agentLabel(id);
    const questions = {
      drain: `Drain agent ${id} (${host})? Its tasks will be killed and it will get no new tasks.`,
      deactivate: `Deactivate agent ${id} (${host})? It will get no new tasks; running tasks keep running.`,
    };
    if (questions[action] && !window.confirm(questions[action])) return;
    btn.disabled = true;
    try {
      await api({ type, [type.toLowerCase()]: { agent_id: id } });
      toast(`${type} ${host}: accepted`);
    } catch (e) {
      toast(e.message, false);
      btn.disabled = false;
    }
  }

  // -- page: frameworks ----------------------------------------------------------

  const frameworksPage = {
    sort: { key: 'registered', dir: -1 },
    mount(main) {
      main.innerHTML = `
        <h1>Frameworks <span class="sub" id="frameworks-count"></span></h1>
        <div id="frameworks-wait"></div>
        <div class="panel">
          <table id="frameworks">
            <thead><tr>
              <th data-sort="id">ID</th><th data-sort="name">Name</th><th data-sort="user">User</th><th data-sort="roles">Roles</th>
              <th data-sort="state">State</th><th data-sort="tasks" data-dir="desc" class="num">Live tasks</th>
              <th data-sort="cpus" data-dir="desc" class="num">CPUs</th><th data-sort="mem" data-dir="desc" class="num">Mem</th>
              <th data-sort="registered" data-dir="desc">Registered</th><th>Actions</th>
            </tr></thead>
            <tbody></tbody>
          </table>
        </div>
        <h2>Completed frameworks</h2>
        <div class="panel">
          <table id="completed-frameworks">
            <thead><tr><th>ID</th><th>Name</th><th>User</th><th>Roles</th><th>Registered</th></tr></thead>
            <tbody></tbody>
          </table>
        </div>`;
      sortable($('#frameworks'), this.sort, () => this.update());
      $('#frameworks tbody').addEventListener('click', async (ev) => {
        const btn = ev.target.closest('button[data-action="teardown"]');
        if (!btn) return;
        const id = btn.closest('tr').dataset.frameworkId;
        if (!window.confirm(`Tear down framework ${id} (${frameworkName(id)})? All its tasks will be killed.`)) return;
        btn.disabled = true;
        try {
          await api({ type: 'TEARDOWN', teardown: { framework_id: id } });
          toast(`TEARDOWN ${id}: accepted`);
        } catch (e) {
          toast(e.message, false);
          btn.disabled = false;
        }
      });
    },
    update() {
      $('#frameworks-wait').innerHTML = waiting();
      const b = books();
      const fws = [...state.frameworks.values()];
      const usedOf = (f) => b.byFramework.get(frameworkId(f)) || { res: {}, tasks: 0 };
      const stateOf = (f) => (f.connected ? (f.active ? 'active' : 'inactive') : 'disconnected');
      sortItems(fws, this.sort, {
        id: frameworkId,
        name: (f) => f.framework_info.name || '',
        user: (f) => f.framework_info.user || '',
        roles: (f) => (f.framework_info.roles || []).join(','),
        state: stateOf,
        tasks: (f) => usedOf(f).tasks,
        cpus: (f) => usedOf(f).res.cpus || 0,
        mem: (f) => usedOf(f).res.mem || 0,
        registered: (f) => (f.registered_time && f.registered_time.nanoseconds) || 0,
      }, $('#frameworks'));
      $('#frameworks-count').textContent = `${fws.length}`;
      syncRows($('#frameworks tbody'), fws, {
        key: frameworkId,
        columns: 10,
        empty: 'No frameworks registered.',
        attrs: (f) => ({ 'data-framework-id': frameworkId(f), 'data-state': stateOf(f) }),
        row: (f) => {
          const id = frameworkId(f), info = f.framework_info, u = usedOf(f);
          const st = stateOf(f);
          return `<td class="mono id">${esc(id)}</td><td>${esc(info.name)}</td><td>${esc(info.user)}</td>` +
            `<td>${esc((info.roles || []).join(', '))}</td>` +
            `<td class="state">${badge(st, st === 'active' ? 'ok' : st === 'disconnected' ? 'warn' : 'idle')}</td>` +
            `<td class="num"><a href="#/tasks?framework=${encodeURIComponent(id)}">${u.tasks}</a></td>` +
            `<td class="num">${esc(fmtRes('cpus', u.res.cpus || 0))}</td><td class="num">${esc(fmtRes('mem', u.res.mem || 0))}</td>` +
            `<td class="nowrap">${esc(fmtDate(fromNanos(f.registered_time)))}</td>` +
            `<td class="actions"><button data-action="teardown" class="danger">Teardown</button></td>`;
        },
      });
      const done = [...state.completedFrameworks.values()].reverse();
      syncRows($('#completed-frameworks tbody'), done, {
        key: frameworkId,
        columns: 5,
        empty: 'None.',
        attrs: (f) => ({ 'data-framework-id': frameworkId(f) }),
        row: (f) => {
          const info = f.framework_info || {};
          return `<td class="mono"><a href="#/tasks?framework=${encodeURIComponent(frameworkId(f))}">${esc(frameworkId(f))}</a></td>` +
            `<td>${esc(info.name)}</td><td>${esc(info.user)}</td><td>${esc((info.roles || []).join(', '))}</td>` +
            `<td class="nowrap">${esc(fmtDate(fromNanos(f.registered_time)))}</td>`;
        },
      });
    },
  };

  // -- page: tasks -----------------------------------------------------------------

  const tasksPage = {
    sort: { key: 'updated', dir: -1 },
    limit: TASK_ROWS_STEP,
    filters: { state: '', framework: '', agent: '', q: '' },
    mount(main, params) {
      this.readParams(params);
      this.limit = TASK_ROWS_STEP;
      main.innerHTML = `
        <h1>Tasks</h1>
        <div id="tasks-wait"></div>
        <form class="filters" id="task-filters" onsubmit="return false">
          <label>State <select id="filter-state"></select></label>
          <label>Framework <select id="filter-framework"></select></label>
          <label>Agent <select id="filter-agent"></select></label>
          <label>Name or ID <input type="search" id="filter-text" placeholder="filter…" autocomplete="off"></label>
          <span class="count" id="tasks-count"></span>
        </form>
        <div class="panel">
          <table id="tasks">
            <thead><tr>
              <th data-sort="id">ID</th><th data-sort="name">Name</th><th data-sort="state">State</th><th>Health</th>
              <th data-sort="framework">Framework</th><th data-sort="agent">Agent</th>
              <th data-sort="cpus" data-dir="desc" class="num">CPUs</th><th data-sort="mem" data-dir="desc" class="num">Mem</th>
              <th data-sort="updated" data-dir="desc">Last update</th><th>Actions</th>
            </tr></thead>
            <tbody></tbody>
          </table>
          <div class="more" id="tasks-more" hidden><button type="button">Show more</button></div>
        </div>`;
      const stateSel = $('#filter-state');
      stateSel.innerHTML = [['', 'all'], ['live', 'live (not terminal)'], ['terminal', 'terminal']]
        .concat(TASK_STATES.map((s) => [s, s]))
        .map(([v, t]) => `<option value="${esc(v)}">${esc(t)}</option>`).join('');
      stateSel.value = this.filters.state;
      $('#filter-text').value = this.filters.q;
      const changed = () => {
        this.filters.state = stateSel.value;
        this.filters.framework = $('#filter-framework').value;
        this.filters.agent = $('#filter-agent').value;
        this.filters.q = $('#filter-text').value;
        this.limit = TASK_ROWS_STEP;
        this.writeParams();
        this.update();
      };
      for (const sel of ['#filter-state', '#filter-framework', '#filter-agent']) $(sel).addEventListener('change', changed);
      $('#filter-text').addEventListener('input', changed);
      sortable($('#tasks'), this.sort, () => this.update());
      $('#tasks-more button').addEventListener('click', () => { this.limit += TASK_ROWS_STEP; this.update(); });
      $('#tasks tbody').addEventListener('click', (ev) => {
        const btn = ev.target.closest('button[data-action="kill"]');
        if (!btn) return;
        const tr = btn.closest('tr');
        killTask(tr.dataset.frameworkId, tr.dataset.taskId, btn);
      });
    },
    // A new query on the same page (a link from another row): no rebuild.
    reparam(params) {
      this.readParams(params);
      $('#filter-state').value = this.filters.state;
      $('#filter-text').value = this.filters.q;
      this.update();
    },
    readParams(params) {
      this.filters = {
        state: params.get('state') || '',
        framework: params.get('framework') || '',
        agent: params.get('agent') || '',
        q: params.get('q') || '',
      };
    },
    writeParams() {
      const p = new URLSearchParams();
      for (const [k, v] of Object.entries(this.filters)) if (v) p.set(k, v);
      const qs = p.toString();
      history.replaceState(null, '', '#/tasks' + (qs ? '?' + qs : ''));
    },
    options(sel, entries, chosen, allLabel) {
      const html = [`<option value="">${esc(allLabel)}</option>`]
        .concat(entries.map(([v, t]) => `<option value="${esc(v)}">${esc(t)}</option>`)).join('');
      if (sel._html !== html) { sel.innerHTML = html; sel._html = html; }
      sel.value = chosen;
      if (sel.value !== chosen) {  // not (or no longer) known: keep it selectable
        sel.insertAdjacentHTML('beforeend', `<option value="${esc(chosen)}">${esc(chosen)}</option>`);
        sel._html = null;
        sel.value = chosen;
      }
    },
    update() {
      $('#tasks-wait').innerHTML = waiting();
      const all = [...state.tasks.values()];
      const fids = new Set(all.map((t) => val(t.framework_id)));
      for (const id of state.frameworks.keys()) fids.add(id);
      this.options($('#filter-framework'), [...fids].sort().map((id) => [id, `${frameworkName(id) || '?'} · ${id}`]),
        this.filters.framework, 'all');
      const aids = new Set(all.map((t) => val(t.agent_id)).filter(Boolean));
      for (const id of state.agents.keys()) aids.add(id);
      this.options($('#filter-agent'), [...aids].sort().map((id) => [id, `${agentLabel(id)} · ${id}`]),
        this.filters.agent, 'all');

      const f = this.filters;
      const q = f.q.trim().toLowerCase();
      const shown = all.filter((t) =>
        (!f.state || (f.state === 'live' ? isLive(t) : f.state === 'terminal' ? !isLive(t) : t.state === f.state)) &&
        (!f.framework || val(t.framework_id) === f.framework) &&
        (!f.agent || val(t.agent_id) === f.agent) &&
        (!q || (t.name || '').toLowerCase().includes(q) || val(t.task_id).toLowerCase().includes(q)));
      const res = (t) => (t._res || (t._res = scalars(t.resources)));
      sortItems(shown, this.sort, {
        id: (t) => val(t.task_id),
        name: (t) => t.name || '',
        state: (t) => t.state || '',
        framework: (t) => frameworkName(val(t.framework_id)) + val(t.framework_id),
        agent: (t) => agentLabel(val(t.agent_id)),
        cpus: (t) => res(t).cpus || 0,
        mem: (t) => res(t).mem || 0,
        updated: (t) => t._updated || 0,
      }, $('#tasks'));
      const page = shown.slice(0, this.limit);
      $('#tasks-count').textContent = `showing ${page.length} of ${shown.length} matching, ${all.length} known`;
      $('#tasks-more').hidden = shown.length <= page.length;
      syncRows($('#tasks tbody'), page, {
        key: (t) => taskKey(val(t.framework_id), val(t.task_id)),
        columns: 10,
        empty: state.tasks.size ? 'No task matches these filters.' : 'No tasks yet.',
        attrs: (t) => ({
          'data-task-id': val(t.task_id),
          'data-framework-id': val(t.framework_id),
          'data-agent-id': val(t.agent_id),
          'data-state': t.state || '',
        }),
        row: (t) => {
          const fid = val(t.framework_id), tid = val(t.task_id), aid = val(t.agent_id);
          const link = `#/tasks/${encodeURIComponent(fid)}/${encodeURIComponent(tid)}`;
          const h = health(t);
          return `<td class="mono id"><a href="${link}">${esc(tid)}</a></td><td class="name">${esc(t.name)}</td>` +
            `<td class="state">${badge(t.state)}</td>` +
            `<td class="health">${h == null ? '<span class="muted">–</span>' : badge(h ? 'healthy' : 'unhealthy', h ? 'ok' : 'bad')}</td>` +
            `<td><a href="#/tasks?framework=${encodeURIComponent(fid)}" title="${esc(fid)}">${esc(frameworkName(fid) || fid)}</a></td>` +
            `<td><a href="#/tasks?agent=${encodeURIComponent(aid)}" title="${esc(aid)}">${esc(agentLabel(aid))}</a></td>` +
            `<td class="num">${esc(fmtRes('cpus', res(t).cpus || 0))}</td><td class="num">${esc(fmtRes('mem', res(t).mem || 0))}</td>` +
            `<td class="nowrap">${esc(fmtDate(fromSeconds(t._updated)))}</td>` +
            `<td class="actions">${isLive(t) ? '<button data-action="kill" class="danger">Kill</button>' : ''}</td>`;
        },
      });
    },
  };

  // The health of a task's newest status that says one (null: no check).
  function health(t) {
    const s = t.statuses || [];
    for (let i = s.length - 1; i >= 0; --i) if (typeof s[i].healthy === 'boolean') return s[i].healthy;
    return null;
  }

  async function killTask(fid, tid, btn) {
    if (!window.confirm(`Kill task ${tid}?`)) return;
    if (btn) btn.disabled = true;
    try {
      await api({ type: 'KILL', kill: { task_id: tid, framework_id: fid } });
      toast(`KILL ${tid}: accepted`);
    } catch (e) {
      toast(e.message, false);
      if (btn) btn.disabled = false;
    }
  }

  // -- page: one task --------------------------------------------------------------

  // Follows one sandbox file of a task through its agent's
  // GET /files/read?framework_id&task_id&path&offset&length ->
  // {"data": "...", "offset": N, "size": file size}, every second (at once
  // again while a read comes back full). "size", when there, lets it start
  // near the end of a long file and count the bytes read exactly.
  class LogTail {
    constructor(file, fid, tid, pre, status) {
      this.file = file;
      this.fid = fid;
      this.tid = tid;
      this.pre = pre;
      this.status = status;
      this.offset = 0;
      this.text = '';
      this.trimmed = false;
      this.timer = null;
      this.stopped = false;
      this.failures = 0;
      this.doneReads = 0;
      this.seen = false;  // an answer came: the first one may move to the file's end
      this.encoder = new TextEncoder();
    }

    start() { this.tick(); }

    stop() {
      this.stopped = true;
      clearTimeout(this.timer);
      if (this.abort) this.abort.abort();
    }

    later(ms) {
      if (!this.stopped) this.timer = setTimeout(() => this.tick(), ms);
    }

    setStatus(text, unavailable = false) {
      this.status.textContent = text;
      this.status.classList.toggle('unavailable', unavailable);
      this.pre.dataset.available = unavailable ? 'false' : 'true';
    }

    async tick() {
      if (this.stopped) return;
      const task = state.tasks.get(taskKey(this.fid, this.tid));
      const agent = task ? state.agents.get(val(task.agent_id)) : null;
      const address = agent && agent.http_address;
      if (!address) {
        this.setStatus(task && !agent ? 'log unavailable: the task\'s agent is no longer registered'
          : task ? 'log unavailable: the agent has no HTTP address' : 'log unavailable: unknown task', true);
        return this.later(2000);
      }
      // An HTTPS master's agents serve HTTPS too (they share the deployment's TLS).
      const base = /^https?:\/\//.test(address) ? address.replace(/\/+$/, '') : location.protocol + '//' + address;
      const url = `${base}/files/read?framework_id=${encodeURIComponent(this.fid)}` +
        `&task_id=${encodeURIComponent(this.tid)}&path=${encodeURIComponent(this.file)}` +
        `&offset=${this.offset}&length=${LOG_CHUNK}`;
      let more = false;
      this.abort = new AbortController();
      const timeout = setTimeout(() => this.abort.abort(), 5000);
      try {
        const r = await fetch(url, { headers: withAuth(), cache: 'no-store', signal: this.abort.signal });
        if (!r.ok) {
          let why = '';
          try { why = (await r.json()).error || ''; } catch (e) { /* not JSON */ }
          throw new Error(`the agent answered ${r.status}${why ? ': ' + why : ''}`);
        }
        const body = await r.json();
        if (!body || typeof body.data !== 'string') throw new Error('the agent\'s answer has no "data"');
        const at = typeof body.offset === 'number' ? body.offset : this.offset;
        const size = typeof body.size === 'number' ? body.size : null;
        // A long file: start near its end instead of reading it all.
        if (!this.seen && size != null && size - at > LOG_START_BYTES) {
          this.seen = true;
          this.offset = size - LOG_START_BYTES;
          this.append(`[… ${this.offset} earlier bytes not shown …]\n`);
          this.later(0);
          return;
        }
        this.seen = true;
        if (at !== this.offset) this.append(`\n[… skipped to byte ${at} …]\n`);
        // How many bytes of the file `data` stands for: the agent reads
        // min(length, size - offset) bytes, but it sends text in which each
        // byte that is not UTF-8 became U+FFFD (3 bytes), so the text's own
        // length is only the fallback for an answer without "size".
        const bytes = size != null ? Math.max(0, Math.min(LOG_CHUNK, size - at))
          : this.encoder.encode(body.data).length;
        this.offset = at + bytes;
        if (body.data) this.append(body.data);
        this.failures = 0;
        more = bytes >= LOG_CHUNK;
        const ended = task && !isLive(task);
        if (ended && !bytes) this.doneReads++;
        this.setStatus(`${ended ? 'task ended' : 'following'} · ${this.offset} bytes`);
        if (ended && this.doneReads >= 2) {  // nothing more will come
          this.setStatus(`complete · ${this.offset} bytes`);
          return;
        }
      } catch (e) {
        if (this.stopped) return;
        this.failures++;
        const why = e.name === 'AbortError' ? 'the agent did not answer in 5 s'
          : e instanceof TypeError ? `the agent at ${address} is unreachable` : e.message;
        this.setStatus(`log unavailable: ${why}`, true);
      } finally {
        clearTimeout(timeout);
      }
      this.later(more ? 0 : Math.min(10000, 1000 * 2 ** Math.max(0, this.failures - 1)));
    }

    append(s) {
      const pre = this.pre;
      const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
      this.text += s;
      if (this.text.length > LOG_KEEP_CHARS) {
        this.text = this.text.slice(this.text.length - LOG_KEEP_CHARS);
        this.trimmed = true;
      }
      pre.textContent = (this.trimmed ? '[… earlier output trimmed …]\n' : '') + this.text;
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    }
  }

  const taskPage = {
    tails: [],
    mount(main, params, parts) {
      this.fid = parts[1];
      this.tid = parts[2];
      main.innerHTML = `
        <p><a href="#/tasks">← all tasks</a></p>
        <h1>Task <span class="mono" id="task-id">${esc(this.tid)}</span> <span id="task-state"></span></h1>
        <div id="task-wait"></div>
        <div id="task-missing" class="error" hidden></div>
        <div class="panel"><dl class="facts" id="task-facts"></dl></div>
        <p><button type="button" id="task-kill" class="danger" hidden>Kill task</button></p>
        <h2>States</h2>
        <div class="panel">
          <table id="task-statuses">
            <thead><tr><th>State</th><th>Time</th><th>Health</th><th>Exit code</th><th>Reason</th><th>Message</th></tr></thead>
            <tbody></tbody>
          </table>
        </div>
        <h2>Output</h2>
        <div class="logs">
          <div class="panel"><div class="log-head"><span class="title">stdout</span><span class="log-status" id="log-stdout-status">waiting…</span></div>
            <pre class="log" id="log-stdout"></pre></div>
          <div class="panel"><div class="log-head"><span class="title">stderr</span><span class="log-status" id="log-stderr-status">waiting…</span></div>
            <pre class="log" id="log-stderr"></pre></div>
        </div>`;
      $('#task-kill').addEventListener('click', (ev) => killTask(this.fid, this.tid, ev.target));
      this.tails = ['stdout', 'stderr'].map((file) =>
        new LogTail(file, this.fid, this.tid, $('#log-' + file), $(`#log-${file}-status`)));
      this.tailsStarted = false;
    },
    unmount() {
      for (const t of this.tails) t.stop();
      this.tails = [];
    },
    update() {
      $('#task-wait').innerHTML = waiting();
      const t = state.tasks.get(taskKey(this.fid, this.tid));
      const missing = $('#task-missing');
      missing.hidden = !!t || !state.haveSnapshot;
      missing.textContent = t ? '' : `The master knows no task ${this.tid} of framework ${this.fid} ` +
        '(it keeps a bounded number of completed tasks).';
      if (!t) return;
      if (!this.tailsStarted) {
        this.tailsStarted = true;
        for (const tail of this.tails) tail.start();
      }
      $('#task-state').innerHTML = badge(t.state);
      $('#task-state').dataset.state = t.state;
      const statuses = t.statuses || [];
      let exit = null, signal = null, message = '', reason = '';
      for (const s of statuses) {
        if (typeof s.exit_code === 'number') exit = s.exit_code;
        if (typeof s.term_signal === 'number') signal = s.term_signal;
      }
      const last = statuses[statuses.length - 1] || {};
      message = last.message || '';
      reason = last.reason || '';
      const h = health(t);
      const fid = val(t.framework_id), aid = val(t.agent_id);
      const agent = state.agents.get(aid);
      const r = scalars(t.resources);
      const facts = [
        ['Name', esc(t.name || '')],
        ['State', `<span id="fact-state">${badge(t.state)}</span>`],
        ['Health', `<span id="fact-health">${h == null ? 'no health check' : h ? 'healthy' : 'unhealthy'}</span>`],
        ['Exit code', `<span id="fact-exit-code">${exit == null ? '–' : esc(exit)}${signal ? ` (signal ${esc(signal)})` : ''}</span>`],
        ['Message', esc(message) || '<span class="muted">–</span>'],
        ['Reason', esc(reason) || '<span class="muted">–</span>'],
        ['Framework', `<a href="#/tasks?framework=${encodeURIComponent(fid)}">${esc(frameworkName(fid) || '?')}</a> <span class="mono muted">${esc(fid)}</span>`],
        ['Agent', `<a href="#/tasks?agent=${encodeURIComponent(aid)}">${esc(agentLabel(aid))}</a> <span class="mono muted">${esc(aid)}</span>` +
          (agent && agent.http_address ? ` <span class="muted">http ${esc(agent.http_address)}</span>` : '')],
        ['Executor', `<span class="mono">${esc(val(t.executor_id)) || '–'}</span>`],
        ['Role', esc(t.role || '*')],
        ['Resources', esc(Object.entries(r).map(([k, v]) => `${k} ${fmtRes(k, v)}`).join(', ') || '–')],
      ];
      const html = facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('');
      const dl = $('#task-facts');
      if (dl._html !== html) { dl.innerHTML = html; dl._html = html; }
      $('#task-kill').hidden = !isLive(t);
      syncRows($('#task-statuses tbody'), statuses.map((s, i) => ({ s, i })), {
        key: ({ s, i }) => `${i}:${s.state}`,
        columns: 6,
        empty: 'No status yet.',
        attrs: ({ s }) => ({ 'data-state': s.state || '' }),
        row: ({ s }) => `<td class="state">${badge(s.state)}</td>` +
          `<td class="time nowrap" title="${esc(s.timestamp)}">${esc(fmtDate(fromSeconds(s.timestamp), true))}</td>` +
          `<td>${typeof s.healthy === 'boolean' ? badge(s.healthy ? 'healthy' : 'unhealthy', s.healthy ? 'ok' : 'bad') : '<span class="muted">–</span>'}</td>` +
          `<td class="num">${typeof s.exit_code === 'number' ? esc(s.exit_code) : '<span class="muted">–</span>'}</td>` +
          `<td>${esc(s.reason || '')}</td><td>${esc(s.message || '')}</td>`,
      });
    },
  };

  // -- page: roles -------------------------------------------------------------------

  const rolesPage = {
    mount(main) {
      main.innerHTML = `
        <h1>Roles</h1>
        <div id="roles-wait"></div>
        <div class="panel">
          <table id="roles">
            <thead><tr><th>Role</th><th class="num">Weight</th><th class="num">Frameworks</th>
              <th>Allocated</th><th>Offered</th><th>Quota</th><th>Quota consumed</th></tr></thead>
            <tbody></tbody>
          </table>
        </div>
        <div class="note" id="roles-note"></div>
        <h2>Change a role</h2>
        <div class="panel">
          <form class="inline" id="weight-form">
            <label>Role <input class="wide" name="role" required placeholder="e.g. analytics"></label>
            <label>Weight <input name="weight" type="number" min="0.001" step="any" required value="1"></label>
            <button class="primary" type="submit">Set weight</button>
          </form>
          <form class="inline" id="quota-form">
            <label>Role <input class="wide" name="role" required placeholder="e.g. analytics"></label>
            <label>CPUs <input name="cpus" type="number" min="0" step="any" placeholder="none"></label>
            <label>Mem (MB) <input name="mem" type="number" min="0" step="any" placeholder="none"></label>
            <label>Disk (MB) <input name="disk" type="number" min="0" step="any" placeholder="none"></label>
            <label>GPUs <input name="gpus" type="number" min="0" step="1" placeholder="none"></label>
            <button class="primary" type="submit">Set quota</button>
          </form>
          <p class="note" style="padding: 0 16px 12px">A quota with every field empty removes the role's quota.</p>
        </div>`;
      $('#weight-form').addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const form = ev.target;
        const role = form.role.value.trim();
        const weight = Number(form.weight.value);
        try {
          await api({ type: 'UPDATE_WEIGHTS', update_weights: { weight_infos: [{ role, weight }] } });
          toast(`Weight of ${role} set to ${weight}`);
        } catch (e) { toast(e.message, false); }
        refreshRoles(true);
      });
      $('#quota-form').addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const form = ev.target;
        const role = form.role.value.trim();
        const limits = {};
        for (const n of RESOURCES) if (form[n].value !== '') limits[n] = Number(form[n].value);
        try {
          await api({ type: 'UPDATE_QUOTA', update_quota: { quota_configs: [{ role, limits }] } });
          toast(`Quota of ${role} set`);
        } catch (e) { toast(e.message, false); }
        refreshRoles(true);
      });
      $('#roles tbody').addEventListener('click', (ev) => {
        const a = ev.target.closest('a[data-edit]');
        if (!a) return;
        ev.preventDefault();
        const row = roleRows(books()).find((r) => r.name === a.dataset.edit);
        if (!row) return;
        $('#weight-form').role.value = row.name;
        $('#weight-form').weight.value = row.weight == null ? 1 : row.weight;
        const qf = $('#quota-form');
        qf.role.value = row.name;
        for (const n of RESOURCES) qf[n].value = row.quota && row.quota[n] != null ? row.quota[n] : '';
        qf.scrollIntoView({ behavior: 'smooth', block: 'center' });
      });
      refreshRoles(true);
    },
    update() {
      $('#roles-wait').innerHTML = waiting();
      const rows = roleRows(books());
      const list = (res) => {
        const e = Object.entries(res || {}).filter(([, v]) => v);
        return e.length ? esc(e.map(([k, v]) => `${k} ${fmtRes(k, v)}`).join(', ')) : '<span class="muted">–</span>';
      };
      syncRows($('#roles tbody'), rows, {
        key: (r) => r.name,
        columns: 7,
        empty: 'No roles yet.',
        attrs: (r) => ({ 'data-role': r.name }),
        row: (r) => {
          let consumed = '<span class="muted">no quota</span>';
          if (r.quota && Object.keys(r.quota).length) {
            consumed = Object.entries(r.quota).map(([k, v]) =>
              `<div class="nowrap">${esc(k)}: ${esc(fmtRes(k, r.allocated[k] || 0))} / ${esc(fmtRes(k, v))}` +
              `${usageBar(r.allocated[k] || 0, v)}</div>`).join('');
          }
          return `<td><b>${esc(r.name)}</b> <a href="#" data-edit="${esc(r.name)}" class="muted">edit</a></td>` +
            `<td class="num weight">${r.weight == null ? '–' : esc(trimNum(r.weight, 3))}</td>` +
            `<td class="num">${r.frameworks.size}</td><td class="allocated">${list(r.allocated)}</td>` +
            `<td class="offered">${r.offered ? list(r.offered) : '<span class="muted">–</span>'}</td>` +
            `<td class="quota">${r.quota ? list(r.quota) : '<span class="muted">none</span>'}</td><td class="consumed">${consumed}</td>`;
        },
      });
      $('#roles-note').textContent = rolesNote();
    },
  };

  // -- page: apps (the apps framework's /v2 API, polled) ------------------------------

  // The apps framework (services/apps, docs/apps.md) serves Marathon's /v2
  // API on this origin. None of it is on the SUBSCRIBE stream, so this page
  // asks APPS_ENDPOINTS every APPS_POLL_MS while it is shown and the browser
  // tab is visible. 404 or 503 from /v2/apps: the framework is not running
  // here (the page says so and keeps asking). What these answers say is put
  // into the page as text nodes and attribute values only, never as HTML.

  const APPS_POLL_MS = 2000;
  const APPS_TIMEOUT_MS = 5000;
  const APPS_ENDPOINTS = ['/v2/apps?embed=apps.tasks', '/v2/deployments', '/v2/queue'];
  const DEPLOYMENT_CLASS = {
    running: 'info', canary: 'warn', success: 'ok', failed: 'bad', canceled: 'idle', rolled_back: 'warn',
  };

  // el('td', {class: 'num'}, 'text', node, ...): strings become text nodes.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v != null && v !== false) e.setAttribute(k, String(v));
    for (const c of children.flat(Infinity)) if (c != null && c !== false) e.append(c instanceof Node ? c : String(c));
    return e;
  }
  const badgeEl = (label, cls) => el('span', { class: `badge ${cls || stateClass(label)}` }, label);
  const mutedEl = (s) => el('span', { class: 'muted' }, s);
  const numOr = (x, dash = '–') => (typeof x === 'number' && !Number.isNaN(x) ? x : dash);
  const fromIso = (s) => (typeof s === 'string' && s ? new Date(s) : null);
  const appLink = (id) => el('a', { href: '#/apps?app=' + encodeURIComponent(id) }, id);

  // GET path -> parsed JSON; an error carries the HTTP status (0: no answer).
  async function getJSON(path, signal) {
    let r;
    try {
      r = await authFetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store', signal });
    } catch (e) {
      const err = new Error(`GET ${path}: ${e.name === 'AbortError' ? `no answer in ${APPS_TIMEOUT_MS / 1000} s` : 'the master is unreachable'}`);
      err.status = 0;
      throw err;
    }
    const text = await r.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
    if (!r.ok || body == null) {
      const why = body && body.message ? body.message : text.slice(0, 200) || r.statusText;
      const err = new Error(`GET ${path}: ${r.status}${why ? ' ' + why : ''}${r.ok ? ' (not JSON)' : ''}`);
      err.status = r.status;
      throw err;
    }
    return body;
  }

  // Asks APPS_ENDPOINTS now and then every APPS_POLL_MS while the tab is
  // visible (at once again when it becomes visible); onAnswers gets their
  // Promise.allSettled results. stop() ends it, a request in flight too.
  function pollApps(onAnswers) {
    let stopped = false, timer = null, inFlight = false, abort = null;
    const tick = async () => {
      clearTimeout(timer);
      timer = null;
      if (stopped || inFlight || document.hidden) return;
      inFlight = true;
      abort = new AbortController();
      const timeout = setTimeout(() => abort.abort(), APPS_TIMEOUT_MS);
      const results = await Promise.allSettled(APPS_ENDPOINTS.map((p) => getJSON(p, abort.signal)));
      clearTimeout(timeout);
      inFlight = false;
      if (stopped) return;
      try {
        onAnswers(results);
      } catch (e) {
        console.error(e);
      }
      if (!document.hidden) timer = setTimeout(tick, APPS_POLL_MS);
    };
    const onVisibility = () => { if (!document.hidden) tick(); };
    document.addEventListener('visibilitychange', onVisibility);
    tick();
    return {
      stop() {
        stopped = true;
        clearTimeout(timer);
        if (abort) abort.abort();
        document.removeEventListener('visibilitychange', onVisibility);
      },
    };
  }

  const deploymentState = (d) => (d.tessera && d.tessera.state) || 'running';
  const deploymentKind = (d) => (d.tessera && d.tessera.kind) ||
    ((d.currentActions && d.currentActions[0] && d.currentActions[0].action) || '');
  function deploymentProgress(d) {
    const t = d.tessera || {};
    if (typeof t.target === 'number') return `${numOr(t.newHealthy, 0)}/${t.target} new, ${numOr(t.oldInstances, 0)} old`;
    return `step ${numOr(d.currentStep, '?')}/${numOr(d.totalSteps, '?')}`;
  }
  // A deployment as one line: its state's badge, then "kind progress".
  const deploymentLine = (d) => el('div', { class: 'nowrap', title: (d.tessera && d.tessera.reason) || null },
    badgeEl(deploymentState(d), DEPLOYMENT_CLASS[deploymentState(d)] || 'idle'),
    ` ${deploymentKind(d)} ${deploymentProgress(d)}`);

  // A Marathon task's health: true (every result alive), false, null (none yet).
  function taskHealth(t) {
    const results = t.healthCheckResults || [];
    if (!results.length) return null;
    return results.every((r) => r && r.alive === true);
  }
  const healthEl = (h) => (h == null ? mutedEl('–') : badgeEl(h ? 'healthy' : 'unhealthy', h ? 'ok' : 'bad'));

  function offerText(o) {
    const parts = [`cpus ${trimNum(o.cpus || 0)}`, `mem ${fmtMB(o.mem || 0)}`, `disk ${fmtMB(o.disk || 0)}`];
    if (o.gpus) parts.push(`gpus ${trimNum(o.gpus)}`);
    parts.push(`ports ${numOr(o.ports, 0)}`);
    return `${o.hostname || o.agentId || '?'}: ${parts.join(', ')}`;
  }

  const appsPage = {
    mount(main, params) {
      this.selected = params.get('app') || '';
      this.off = false;        // /v2/apps answered 404 or 503
      this.offWhy = '';
      this.apps = null;        // the last answers (null: none yet)
      this.deployments = null;
      this.queue = null;
      this.at = null;          // Date of the last /v2/apps answer
      this.errors = { apps: '', deployments: '', queue: '' };
      main.innerHTML = `
        <h1>Apps <span class="sub" id="apps-count"></span></h1>
        <p id="apps-off" class="muted" hidden>The apps framework is not running on this master.</p>
        <p class="note" id="apps-note">Loading…</p>
        <div id="apps-body" hidden>
          <div class="panel">
            <table id="apps">
              <thead><tr><th>ID</th><th class="num">Running / wanted</th><th class="num">Healthy / unhealthy</th>
                <th class="num">CPUs</th><th class="num">Mem</th><th>Version</th><th>Deployment</th></tr></thead>
              <tbody></tbody>
            </table>
          </div>
          <section id="app-detail" hidden>
            <h2>Tasks of <span class="mono" id="app-detail-id"></span> <a href="#/apps" class="muted" id="app-detail-close">close</a></h2>
            <p id="app-detail-missing" class="error" hidden></p>
            <div class="panel">
              <table id="app-tasks">
                <thead><tr><th>ID</th><th>Host</th><th>Ports</th><th>State</th><th>Health</th><th>Version</th><th>Started</th></tr></thead>
                <tbody></tbody>
              </table>
            </div>
            <div id="app-last-failure" hidden>
              <h2>Last task failure</h2>
              <div class="panel"><dl class="facts"></dl></div>
            </div>
          </section>
          <h2>Deployments</h2>
          <div class="panel">
            <table id="deployments">
              <thead><tr><th>ID</th><th>App</th><th>Kind</th><th>State</th><th>Progress</th><th>Deadline</th></tr></thead>
              <tbody></tbody>
            </table>
          </div>
          <p class="note error" id="deployments-note" hidden></p>
          <h2>Waiting to launch <span class="muted">— why not running</span></h2>
          <div class="panel">
            <table id="queue">
              <thead><tr><th>App</th><th class="num">Waiting</th><th>Backoff left</th><th class="num">Offers seen</th>
                <th>Declined by</th><th>Largest offer</th><th>Why</th></tr></thead>
              <tbody></tbody>
            </table>
          </div>
          <p class="note error" id="queue-note" hidden></p>
        </div>`;
      this.poller = pollApps((results) => this.answered(results));
    },
    unmount() {
      if (this.poller) this.poller.stop();
      this.poller = null;
    },
    reparam(params) {
      this.selected = params.get('app') || '';
      this.update();
    },
    answered([apps, deployments, queue]) {
      if (apps.status === 'rejected' && [404, 503].includes(apps.reason.status)) {
        this.off = true;
        this.offWhy = apps.reason.message;
        this.apps = this.deployments = this.queue = this.at = null;
        this.errors = { apps: '', deployments: '', queue: '' };
      } else {
        this.off = false;
        if (apps.status === 'fulfilled') {
          this.apps = Array.isArray(apps.value.apps) ? apps.value.apps : [];
          this.at = new Date();
          this.errors.apps = '';
        } else {
          this.errors.apps = apps.reason.message;
        }
        if (deployments.status === 'fulfilled') {
          this.deployments = Array.isArray(deployments.value) ? deployments.value : [];
          this.errors.deployments = '';
        } else {
          this.errors.deployments = deployments.reason.message;
        }
        if (queue.status === 'fulfilled') {
          this.queue = Array.isArray(queue.value.queue) ? queue.value.queue : [];
          this.errors.queue = '';
        } else {
          this.errors.queue = queue.reason.message;
        }
      }
      if (current.view === this) this.update();
    },
    update() {
      const off = $('#apps-off');
      off.hidden = !this.off;
      off.title = this.offWhy;
      $('#apps-body').hidden = this.off || !this.apps;
      const note = $('#apps-note');
      note.classList.toggle('error', !!this.errors.apps);
      if (this.off) note.textContent = '';
      else if (this.errors.apps) {
        note.textContent = `Could not ask the apps framework: ${this.errors.apps}. ` +
          (this.at ? `Showing its answer of ${fmtDate(this.at)}; ` : '') + 'trying again every 2 s.';
      } else if (!this.apps) note.textContent = 'Loading…';
      else {
        note.textContent = `As of ${fmtDate(this.at)} (the apps framework's /v2/apps, /v2/deployments and /v2/queue, ` +
          'asked every 2 s while this page is shown).';
      }
      $('#apps-count').textContent = this.apps ? String(this.apps.length) : '';
      if (this.off || !this.apps) return;

      const deployments = this.deployments || [];
      const apps = [...this.apps].sort((x, y) => String(x.id).localeCompare(String(y.id)));
      const deploymentsOf = (a) => {
        const ids = new Set((a.deployments || []).map((d) => d && d.id));
        return deployments.filter((d) => ids.has(d.id) || (d.affectedApps || []).includes(a.id));
      };
      syncRows($('#apps tbody'), apps, {
        key: (a) => String(a.id),
        columns: 7,
        empty: 'No apps.',
        attrs: (a) => ({ 'data-app-id': String(a.id), class: a.id === this.selected ? 'selected' : '' }),
        cells: (a) => {
          const checks = (a.healthChecks || []).length > 0;
          const unhealthy = a.tasksUnhealthy || 0;
          const deps = deploymentsOf(a);
          return [
            el('td', { class: 'mono id' }, appLink(String(a.id))),
            el('td', {
              class: 'num running', 'data-running': numOr(a.tasksRunning, 0), 'data-instances': numOr(a.instances, 0),
              title: `${numOr(a.tasksStaged, 0)} staged`,
            }, `${numOr(a.tasksRunning, 0)} / ${numOr(a.instances, 0)}`),
            el('td', { class: 'num health' }, checks
              ? [`${numOr(a.tasksHealthy, 0)} / `, el('span', { class: unhealthy ? 'error' : null }, String(unhealthy))]
              : mutedEl('no health checks')),
            el('td', { class: 'num cpus' }, fmtRes('cpus', a.cpus)),
            el('td', { class: 'num mem' }, fmtRes('mem', a.mem)),
            el('td', { class: 'mono version nowrap' }, a.version || '–'),
            el('td', { class: 'deployment' }, deps.length ? deps.map(deploymentLine)
              : (a.deployments || []).length ? mutedEl('deploying') : mutedEl('–')),
          ];
        },
      });

      this.updateDetail(apps);

      syncRows($('#deployments tbody'), deployments, {
        key: (d) => String(d.id),
        columns: 6,
        empty: this.deployments ? 'No deployment is running.' : 'Loading…',
        attrs: (d) => ({ 'data-deployment-id': String(d.id), 'data-state': deploymentState(d) }),
        cells: (d) => {
          const t = d.tessera || {};
          return [
            el('td', { class: 'mono id nowrap' }, d.id),
            el('td', { class: 'app' }, (d.affectedApps || []).map((id, i) => [i ? ', ' : '', appLink(String(id))])),
            el('td', { class: 'kind' }, deploymentKind(d) || '–'),
            el('td', { class: 'state', title: t.reason || null },
              badgeEl(deploymentState(d), DEPLOYMENT_CLASS[deploymentState(d)] || 'idle')),
            el('td', { class: 'progress nowrap' }, deploymentProgress(d)),
            el('td', { class: 'deadline nowrap', title: t.deadline || null }, fmtDate(fromIso(t.deadline))),
          ];
        },
      });
      const dnote = $('#deployments-note');
      dnote.hidden = !this.errors.deployments;
      dnote.textContent = this.errors.deployments;

      const queue = [...(this.queue || [])].sort((x, y) =>
        String((x.app || {}).id).localeCompare(String((y.app || {}).id)));
      syncRows($('#queue tbody'), queue, {
        key: (q) => String((q.app || {}).id),
        columns: 7,
        empty: this.queue ? 'Nothing is waiting to launch.' : 'Loading…',
        attrs: (q) => ({ 'data-app-id': String((q.app || {}).id) }),
        cells: (q) => {
          const t = q.tessera || {};
          const delay = q.delay || {};
          const left = delay.timeLeftSeconds || 0;
          const declined = Object.entries(t.declined || {}).filter(([, n]) => typeof n === 'number' && n > 0);
          const seen = typeof t.offersSeen === 'number' ? t.offersSeen
            : (q.processedOffersSummary || {}).processedOffersCount;
          return [
            el('td', { class: 'mono app' }, appLink(String((q.app || {}).id))),
            el('td', { class: 'num count' }, numOr(q.count)),
            el('td', { class: 'delay nowrap' }, delay.overdue ? 'none (overdue)' : left > 0 ? `${Math.ceil(left)} s` : 'none'),
            el('td', { class: 'num offers', title: t.windowSeconds ? `in the last ${t.windowSeconds} s` : null }, numOr(seen)),
            el('td', { class: 'declined' }, declined.length
              ? declined.map(([why, n]) => el('div', { class: 'nowrap' }, `${why}: ${n}`)) : mutedEl('–')),
            el('td', { class: 'largest', title: t.largestOffer ? t.largestOffer.agentId || null : null },
              t.largestOffer ? offerText(t.largestOffer) : mutedEl('no offer seen')),
            el('td', { class: 'why' }, (t.why || []).length
              ? t.why.map((line) => el('div', null, line)) : mutedEl('–')),
          ];
        },
      });
      const qnote = $('#queue-note');
      qnote.hidden = !this.errors.queue;
      qnote.textContent = this.errors.queue;
    },
    // The chosen app's tasks and last task failure (#/apps?app=ID).
    updateDetail(apps) {
      const section = $('#app-detail');
      section.hidden = !this.selected;
      if (!this.selected) return;
      $('#app-detail-id').textContent = this.selected;
      const app = apps.find((a) => a.id === this.selected);
      const missing = $('#app-detail-missing');
      missing.hidden = !!app;
      missing.textContent = app ? '' : `The apps framework has no app ${this.selected}.`;
      const tasks = app ? [...(app.tasks || [])].sort((x, y) => String(x.id).localeCompare(String(y.id))) : [];
      syncRows($('#app-tasks tbody'), tasks, {
        key: (t) => String(t.id),
        columns: 7,
        empty: app ? 'No tasks.' : 'No such app.',
        attrs: (t) => ({ 'data-task-id': String(t.id), 'data-state': t.state || '' }),
        cells: (t) => [
          el('td', { class: 'mono id' }, t.id),
          el('td', { class: 'host', title: t.agentId || t.slaveId || null }, t.host || '–'),
          el('td', { class: 'mono ports' }, (t.ports || []).join(', ') || '–'),
          el('td', { class: 'state' }, badgeEl(t.state || 'TASK_UNKNOWN')),
          el('td', { class: 'health' }, healthEl(taskHealth(t))),
          el('td', { class: 'mono version nowrap' }, t.version || '–'),
          el('td', { class: 'started nowrap', title: t.startedAt || null }, fmtDate(fromIso(t.startedAt))),
        ],
      });
      const failure = app && app.lastTaskFailure;
      const box = $('#app-last-failure');
      box.hidden = !failure;
      if (!failure) return;
      const facts = [
        ['State', badgeEl(failure.state || 'TASK_UNKNOWN')],
        ['Message', failure.message || mutedEl('–')],
        ['Task', el('span', { class: 'mono' }, failure.taskId || '–')],
        ['Host', failure.host || '–'],
        ['When', el('span', { title: failure.timestamp || null }, fmtDate(fromIso(failure.timestamp)))],
        ['Version', el('span', { class: 'mono' }, failure.version || '–')],
      ].flatMap(([k, v]) => [el('dt', null, k), el('dd', null, v)]);
      const dl = $('dl', box);
      const html = facts.map((n) => n.outerHTML).join('');
      if (dl._html !== html) {
        dl.replaceChildren(...facts);
        dl._html = html;
      }
    },
  };

  // -- routing -----------------------------------------------------------------------

  const views = {
    overview, agents: agentsPage, frameworks: frameworksPage, tasks: tasksPage, task: taskPage, roles: rolesPage,
    apps: appsPage,
  };
  const current = { name: '', view: null, path: '' };

  function route() {
    const hash = location.hash.replace(/^#/, '') || '/';
    const q = hash.indexOf('?');
    const path = q < 0 ? hash : hash.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : hash.slice(q + 1));
    let parts;
    try {
      parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    } catch (e) {
      parts = [];
    }
    let name = parts[0] || 'overview';
    if (name === 'tasks' && parts.length >= 3) name = 'task';
    if (!views[name]) name = 'overview';
    for (const a of $$('#nav a')) a.classList.toggle('active', a.dataset.view === (name === 'task' ? 'tasks' : name));
    if (name === current.name && path === current.path && current.view.reparam) {
      current.view.reparam(params);
      return;
    }
    if (current.view && current.view.unmount) current.view.unmount();
    current.name = name;
    current.path = path;
    current.view = views[name];
    document.title = `Tessera · ${name === 'task' ? 'task ' + parts[2] : name}`;
    const main = $('#main');
    main.dataset.view = name;
    current.view.mount(main, params, parts);
    current.view.update();
    window.scrollTo(0, 0);
  }

  window.addEventListener('hashchange', route);
  route();
  streamForever();

  // For tests and the curious: the copy this page keeps.
  window.tessera = { state, RecordIOParser, applyEvent, renderSoon };
})();
