// A session's view (#/session/NAME): its record (GetHistory, every page) and lookahead window
// (GetLR) drawn by chart.js, then kept live by Watch: each message adds the epoch it reached,
// and an amendment, an import or missed messages reload the record and the window.
import {ApiError, MAX_PAGES, api, namePath, readEvents} from './api.js';
import {KINDS, changes, drawChart} from './chart.js';
import {$, ago, el, fmt, labelChips, num, setStatus, showError} from './dom.js';

const LOOKAHEAD = 100;      // GetLR window for deterministic schedules
const HISTORY_PAGE = 10000;  // GetHistory page_size
const RETRY_MIN_MS = 500, RETRY_MAX_MS = 10000;  // Watch reconnect backoff

// The open view's state, or null. past/ahead: Map epoch -> groups (GroupValues JSON); past is
// the record plus what Watch delivered since, ahead the lookahead window.
let sv = null;

export const sessionHash = (name) =>
  '#/session/' + name.split('/').map(encodeURIComponent).join('/');

function addEpochs(map, entries) {
  for (const e of entries || []) map.set(Number(e.epoch), e.groups || []);
}

async function loadHistory(state) {
  const past = new Map();
  const base = namePath(state.name) + ':history?';
  const params = new URLSearchParams({from_epoch: '0', page_size: String(HISTORY_PAGE)});
  let amendments = [];
  for (let page = 0; page < MAX_PAGES; page++) {
    const r = await api(base + params, state.abort.signal);
    if (page === 0) amendments = r.amendments || [];
    addEpochs(past, r.epochs);
    if (!r.nextPageToken) break;
    params.set('page_token', r.nextPageToken);
  }
  // Watch messages that arrived while the pages were read are newer than the record.
  const recorded = past.size ? Math.max(...past.keys()) : -Infinity;
  for (const [epoch, groups] of state.past) if (epoch > recorded) past.set(epoch, groups);
  state.past = past;
  state.amendments = amendments;
  state.historyError = '';
}

// The lookahead window; a schedule that refuses a step inside it (OneCycleLR near its
// total_steps) is FAILED_PRECONDITION: halve the window and ask again (bounded).
async function loadAhead(state) {
  if (!state.session || !state.session.deterministic) {
    state.ahead = new Map();
    return;
  }
  for (let tries = 0; tries < 8; tries++) {
    try {
      const r = await api(`${namePath(state.name)}:lr?window=${state.window}`, state.abort.signal);
      state.ahead = new Map();
      addEpochs(state.ahead, r.window);
      return;
    } catch (err) {
      if (err.statusName !== 'FAILED_PRECONDITION' || state.window <= 1) throw err;
      state.window = Math.floor(state.window / 2);
    }
  }
}

export function closeSession() {
  if (sv) sv.abort.abort();
  sv = null;
}

export async function openSession(name) {
  closeSession();
  const state = {name, abort: new AbortController(), past: new Map(), ahead: new Map(),
                 amendments: [], session: null, window: LOOKAHEAD, historyError: '',
                 reloading: null, reloadAgain: false, aheadPending: false, renderPending: false,
                 ended: false};
  sv = state;
  $('session-name').textContent = name;
  for (const id of ['charts', 'session-facts', 'session-groups', 'amendments']) {
    $(id).replaceChildren();
  }
  $('session-note').textContent = 'loading…';
  $('session-view').removeAttribute('data-epoch');
  try {
    state.session = await api(namePath(name), state.abort.signal);
    await reload(state);
    showError(null);
  } catch (err) {
    if (sv !== state) return;
    showError(err);
    $('session-note').textContent = '';
    if (err.httpStatus === 404) return;
  }
  if (sv === state) watchLoop(state);
}

// The record and the lookahead again (after an amendment, a reconnect, missed messages).
async function reload(state) {
  const history = loadHistory(state).catch((err) => {
    if (err.name === 'AbortError') throw err;
    state.historyError = err.message;  // the curves go on without a past
  });
  await Promise.all([history, loadAhead(state)]);
  if (sv === state) render(state);
}

// One Watch message: the session after a change.
function onSession(state, s) {
  const prev = state.session;
  if (prev && prev.revision === s.revision) return;  // Watch's first message: as loaded
  state.session = s;
  const epoch = Number(s.lastEpoch);
  state.past.set(epoch, s.groups || []);
  for (const e of [...state.ahead.keys()]) if (e < epoch) state.ahead.delete(e);
  const scheduleChanged = prev && prev.scheduleRevision !== s.scheduleRevision;
  const gap = prev && Number(s.revision) > Number(prev.revision) + 1;
  if (scheduleChanged) state.window = LOOKAHEAD;
  if (scheduleChanged || gap || s.amendment) {
    queueReload(state);
  } else {
    queueAhead(state);
  }
  scheduleRender(state);
}

// At most one reload in flight; one more queued behind it if asked meanwhile.
function queueReload(state) {
  if (state.reloading) {
    state.reloadAgain = true;
    return;
  }
  state.reloading = reload(state).catch(showError).finally(() => {
    state.reloading = null;
    if (state.reloadAgain && sv === state) {
      state.reloadAgain = false;
      queueReload(state);
    }
  });
}

// The window again, at most every 100 ms while steps arrive.
function queueAhead(state) {
  if (state.aheadPending || !state.session.deterministic) return;
  state.aheadPending = true;
  setTimeout(() => {
    state.aheadPending = false;
    if (sv !== state) return;
    loadAhead(state).then(() => scheduleRender(state)).catch(showError);
  }, 100);
}

function scheduleRender(state) {
  if (state.renderPending) return;
  state.renderPending = true;
  setTimeout(() => {
    state.renderPending = false;
    if (sv === state) render(state);
  }, 30);
}

// Reads Watch until the session is deleted or the view closes; reconnects with backoff (and
// then reloads: messages may have been missed meanwhile).
async function watchLoop(state) {
  let delay = RETRY_MIN_MS;
  let first = true;
  const onOpen = () => {
    delay = RETRY_MIN_MS;
    setStatus('live: watching ' + state.name, true);
    if (!first) queueReload(state);
    first = false;
  };
  const onEvent = ({event, data}) => {
    const body = JSON.parse(data);
    if (event !== 'end') {
      onSession(state, body);
      return false;
    }
    if (body.status === 'NOT_FOUND') {
      state.ended = true;
      setStatus('session deleted', false);
      $('session-note').textContent = 'This session was deleted.';
    }
    return true;  // the stream's end; UNAVAILABLE (shutdown) and the like reconnect
  };
  while (sv === state && !state.ended) {
    try {
      await readEvents(namePath(state.name) + ':watch', state.abort.signal, onOpen, onEvent);
    } catch (err) {
      if (err.name === 'AbortError' || sv !== state) return;
      if (err instanceof ApiError && [401, 403, 404].includes(err.httpStatus)) {
        showError(err);
        return;
      }
    }
    if (sv !== state || state.ended) return;
    setStatus('watch interrupted; reconnecting…', false);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, RETRY_MAX_MS);
  }
}

function fact(key, label, value) {
  return el('div', {'data-fact': key}, el('dt', {}, label), el('dd', {}, value));
}

function render(state) {
  const s = state.session;
  if (!s) return;
  const groups = s.groups || [];
  $('session-view').setAttribute('data-epoch', String(s.lastEpoch));
  $('session-facts').replaceChildren(
      fact('type', 'type', s.schedulerType || ''),
      fact('epoch', 'epoch', String(s.lastEpoch)),
      fact('revision', 'revision', String(s.revision)),
      fact('updated', 'updated', ago(s.updateTime)),
      el('div', {'data-fact': 'labels'}, ...labelChips(s.labels)));
  const notes = [];
  if (!s.deterministic) {
    notes.push('No lookahead: this schedule depends on the metric given at each step.');
  }
  if (state.historyError) notes.push('No record: ' + state.historyError);
  $('session-note').textContent = notes.join(' ');
  const charts = [];
  for (const [kind, title] of KINDS) {
    // lr always; momentum and weight decay where they change (as `lrsched plot` draws them):
    // a constant momentum is a flat line, and the table below has its value.
    if (kind !== 'lr' && !changes(state, kind)) continue;
    const c = drawChart(state, kind, title, groups.length);
    if (c) charts.push(c);
  }
  $('charts').replaceChildren(...charts);
  const served = KINDS.filter(([k]) => groups.some((g) => g[k] !== undefined));
  $('session-groups').replaceChildren(
      el('thead', {}, el('tr', {}, el('th', {}, 'Group'),
                         ...served.map(([, t]) => el('th', {class: 'num'}, t)))),
      el('tbody', {}, ...groups.map((g, i) => el('tr', {'data-group': i}, el('td', {}, String(i)),
          ...served.map(([k]) => el('td', {class: 'num'}, fmt(num(g[k]))))))));
  if (!state.amendments.length) {
    $('amendments').replaceChildren();
    return;
  }
  $('amendments').replaceChildren(el('h2', {}, 'Amendments'), el('ul', {},
      ...state.amendments.map((a) => el('li', {'data-epoch': String(a.atEpoch)},
          `epoch ${a.atEpoch}: ${a.kind} ${a.argsJson || ''}` +
          (a.reason ? ` — ${a.reason}` : '') + (a.caller ? ` (${a.caller}, ${a.role})` : '') +
          (a.applied ? '' : ' (scheduled)')))));
}
