// The lrsched dashboard (index.html): the session list (#/) and a session's view
// (#/session/NAME, session.js), read from this server's HTTP/JSON routes (api.js) and nothing
// else. The list polls every LIST_REFRESH_MS; a session view streams (Watch).
import {MAX_PAGES, api, setToken, token} from './api.js';
import {$, ago, el, fmt, labelChips, num, setStatus, showError} from './dom.js';
import {closeSession, openSession, sessionHash} from './session.js';

const LIST_REFRESH_MS = 3000;

let view = null;  // 'list' or 'session'
let listTimer = null;
let listSeq = 0;  // a refresh whose number is no longer listSeq was overtaken: dropped

// "k=v, k2=v2" -> [[k, v], ...]; throws naming the bad item.
function parseLabels(text) {
  const out = [];
  for (const item of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const i = item.indexOf('=');
    if (i <= 0) throw new Error(`Labels filter: "${item}" is not KEY=VALUE`);
    out.push([item.slice(0, i).trim(), item.slice(i + 1).trim()]);
  }
  return out;
}

// ListSessions (every page) with the filters, then the next refresh in LIST_REFRESH_MS.
async function refreshList() {
  clearTimeout(listTimer);
  const seq = ++listSeq;
  try {
    const params = new URLSearchParams({page_size: '1000'});
    const prefix = $('filter-prefix').value.trim();
    if (prefix) params.set('name_prefix', prefix);
    for (const [k, v] of parseLabels($('filter-labels').value)) params.append(`labels[${k}]`, v);
    const sessions = [];
    for (let page = 0; page < MAX_PAGES; page++) {
      const r = await api('/v1/sessions?' + params);
      sessions.push(...(r.sessions || []));
      if (!r.nextPageToken) break;
      params.set('page_token', r.nextPageToken);
    }
    if (seq !== listSeq) return;
    renderList(sessions);
    showError(null);
    setStatus('sessions at ' + new Date().toLocaleTimeString(), true);
  } catch (err) {
    if (seq !== listSeq) return;
    showError(err);
    setStatus('list not refreshed', false);
  } finally {
    if (seq === listSeq && view === 'list') listTimer = setTimeout(refreshList, LIST_REFRESH_MS);
  }
}

function renderList(sessions) {
  const rows = sessions.map((s) => {
    const lrs = (s.groups || []).map((g) => fmt(num(g.lr)));
    const lrText = lrs.length > 3 ? lrs.slice(0, 3).join(', ') + ', …' : lrs.join(', ');
    return el('tr', {'data-name': s.name},
              el('td', {class: 'name'}, el('a', {href: sessionHash(s.name)}, s.name)),
              el('td', {class: 'type'}, s.schedulerType || ''),
              el('td', {class: 'num epoch'}, String(s.lastEpoch ?? '')),
              el('td', {class: 'num lr', title: lrs.join(', ')}, lrText),
              el('td', {class: 'labels'}, ...labelChips(s.labels)),
              el('td', {class: 'updated', title: s.updateTime || ''}, ago(s.updateTime)));
  });
  $('sessions').tBodies[0].replaceChildren(...rows);
  $('list-count').textContent = `${sessions.length} session${sessions.length === 1 ? '' : 's'}`;
}

function route() {
  const hash = location.hash || '#/';
  closeSession();
  clearTimeout(listTimer);
  listSeq++;
  showError(null);
  if (hash.startsWith('#/session/')) {
    const name = hash.slice('#/session/'.length).split('/').map(decodeURIComponent).join('/');
    view = 'session';
    $('list-view').hidden = true;
    $('session-view').hidden = false;
    document.title = `${name} · lrsched`;
    setStatus('connecting…', false);
    openSession(name);
  } else {
    view = 'list';
    $('session-view').hidden = true;
    $('list-view').hidden = false;
    document.title = 'lrsched dashboard';
    refreshList();
  }
}

function start() {
  $('token').value = token();
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    setToken($('token').value.trim());
    route();
  });
  let debounce = null;
  for (const id of ['filter-prefix', 'filter-labels']) {
    $(id).addEventListener('input', () => {
      clearTimeout(debounce);
      debounce = setTimeout(refreshList, 250);
    });
  }
  $('filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    refreshList();
  });
  window.addEventListener('hashchange', route);
  route();
}

start();
