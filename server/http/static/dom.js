// The dashboard's page helpers: elements, the status line and error box, number and time
// formats. Data reaches the page only through textContent and attributes (never as HTML).
import {token} from './api.js';

const SVGNS = 'http://www.w3.org/2000/svg';

export const $ = (id) => document.getElementById(id);

export function setStatus(text, live) {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('live', !!live);
}

// Shows `err` in the error box (null: hides it); 401 marks the token field.
export function showError(err) {
  const box = $('error');
  if (!err) {
    box.hidden = true;
    $('token-form').classList.remove('needed');
    return;
  }
  if (err.name === 'AbortError') return;
  let text = err.message || String(err);
  if (err.httpStatus === 401) {
    text = token() ? 'The server refused this token (UNAUTHENTICATED): enter another one.'
                   : 'The server requires a token: enter it in the Token field.';
  } else if (err.httpStatus === 403) {
    text = "This token's role may not read sessions (PERMISSION_DENIED).";
  }
  $('token-form').classList.toggle('needed', err.httpStatus === 401);
  box.textContent = text;
  box.hidden = false;
}

// A JSON number (or int64 string) as a Number; undefined when absent.
export const num = (v) => (v === undefined || v === null ? undefined : Number(v));

export function fmt(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e5) return v.toExponential(3).replace(/\.?0+e/, 'e');
  return String(Number(v.toPrecision(5)));
}

// An RFC 3339 timestamp as "12 s ago" (or its date, after a day).
export function ago(ts) {
  const t = Date.parse(ts);
  if (!ts || Number.isNaN(t) || t <= 0) return '';
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(t).toISOString().slice(0, 16).replace('T', ' ');
}

export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

export function svg(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

export function labelChips(labels) {
  return Object.keys(labels || {}).sort().map(
      (k) => el('span', {class: 'label', 'data-label': `${k}=${labels[k]}`}, `${k}=${labels[k]}`));
}
