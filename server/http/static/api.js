// The dashboard's HTTP: this server's HTTP/JSON routes (proto/lrsched/v1/lrsched.proto,
// "HTTP/JSON"), protobuf's JSON mapping (lowerCamelCase names, int64 values as strings), with
// the tab's bearer token, and Watch's Server-Sent Events read from a fetch() body (EventSource
// cannot send an Authorization header).

const TOKEN_KEY = 'lrsched.token';
export const MAX_PAGES = 100;  // bound on any paged read

// The token is kept in sessionStorage: this tab only, gone when it closes.
export const token = () => sessionStorage.getItem(TOKEN_KEY) || '';

export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(accept) {
  const h = {Accept: accept};
  const t = token();
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

// A reply that is not 2xx: the gateway's body {code, status, message}.
export class ApiError extends Error {
  constructor(httpStatus, body) {
    const b = body || {};
    super(`${b.status || 'HTTP ' + httpStatus}: ${b.message || ''}`);
    this.httpStatus = httpStatus;
    this.code = b.code;
    this.statusName = b.status || '';
  }
}

// A session name as a path: '/' stays (the contract allows it), the rest is escaped.
export const namePath = (name) =>
  '/v1/sessions/' + name.split('/').map(encodeURIComponent).join('/');

async function errorOf(res) {
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch (e) {
    body = {message: text.slice(0, 200)};  // not the gateway's body: show its start
  }
  return new ApiError(res.status, body);
}

// GET `path`: the reply's JSON, or throws ApiError.
export async function api(path, signal) {
  const res = await fetch(path, {headers: headers('application/json'), signal, cache: 'no-store'});
  if (!res.ok) throw await errorOf(res);
  const text = await res.text();
  return text ? JSON.parse(text) : {};
}

// One event's text block -> {event, data} (data lines joined; comments skipped), or null.
function parseEvent(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (!line || line.startsWith(':')) continue;  // a comment (keep-alive)
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return data.length ? {event, data: data.join('\n')} : null;
}

// Reads the event stream at `path` until it ends or `signal` aborts: onOpen() once connected,
// then onEvent({event, data}) per event; onEvent returning true stops the read. Throws
// ApiError when the stream cannot start.
export async function readEvents(path, signal, onOpen, onEvent) {
  const res = await fetch(path, {headers: headers('text/event-stream'), signal, cache: 'no-store'});
  if (!res.ok) throw await errorOf(res);
  onOpen();
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buf += decoder.decode(value, {stream: true});
    // Events end with a blank line (LF or CRLF).
    for (let m = buf.match(/\r?\n\r?\n/); m; m = buf.match(/\r?\n\r?\n/)) {
      const ev = parseEvent(buf.slice(0, m.index));
      buf = buf.slice(m.index + m[0].length);
      if (ev && onEvent(ev)) {
        reader.cancel().catch(() => {});
        return;
      }
    }
  }
}
