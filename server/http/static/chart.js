// The dashboard's curves: one SVG panel per quantity (lr; momentum and weight decay where they
// change) against the epoch, per param group the served past solid (the record) and the
// lookahead dashed, amendments as vertical markers, the current epoch dotted. Test hooks:
// each polyline carries data-group, data-count (epochs it holds, before decimation),
// data-first and data-last (its epochs).
import {el, fmt, num, svg} from './dom.js';

const MAX_DRAWN = 4000;  // points per polyline before min/max decimation
export const KINDS = [['lr', 'learning rate'], ['momentum', 'momentum (or betas[0])'],
                      ['weightDecay', 'weight decay']];

function niceTicks(lo, hi, n) {
  const span = hi - lo;
  const step0 = span / n;
  const mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= n) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9 && out.length < 50; v += step) {
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return out;
}

// [[epoch, value]] of one group's `kind` in `map`, epoch order.
function seriesOf(map, group, kind) {
  const out = [];
  for (const [epoch, groups] of map) {
    const v = num((groups[group] || {})[kind]);
    if (v !== undefined) out.push([epoch, v]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

// At most MAX_DRAWN points: per bucket of epochs the first, min, max and last kept.
function decimate(points) {
  if (points.length <= MAX_DRAWN) return points;
  const per = Math.ceil(points.length / (MAX_DRAWN / 4));
  const out = [];
  for (let i = 0; i < points.length; i += per) {
    const b = points.slice(i, i + per);
    let lo = b[0], hi = b[0];
    for (const p of b) {
      if (p[1] < lo[1]) lo = p;
      if (p[1] > hi[1]) hi = p;
    }
    const keep = new Set([b[0], lo, hi, b[b.length - 1]]);
    out.push(...b.filter((p) => keep.has(p)));
  }
  return out;
}

function amendmentLabel(a) {
  let arg = '';
  try {
    const j = JSON.parse(a.argsJson || '{}');
    if (a.kind === 'scale') arg = ` ×${j.factor}`;
    else if (a.kind === 'continue_with') arg = ` ${(j.scheduler || j).type || ''}`;
    else arg = ' ' + Object.keys(j).join(',');
  } catch (e) { /* args shown as recorded in the list below */ }
  return `${a.kind}${arg}${a.reason ? ': ' + a.reason : ''}${a.applied ? '' : ' (scheduled)'}`;
}

// The panel of `kind` for a session view's state ({session, past, ahead: Map epoch -> groups,
// amendments}), or null when it has no values of that kind.
export function drawChart(state, kind, title, groupCount) {
  const W = 1000, H = kind === 'lr' ? 280 : 170;
  const m = {l: 70, r: 16, t: kind === 'lr' ? 24 : 12, b: 26};
  const series = [];
  for (let g = 0; g < groupCount; g++) {
    series.push({g, past: seriesOf(state.past, g, kind), ahead: seriesOf(state.ahead, g, kind)});
  }
  const all = series.flatMap((s) => s.past.concat(s.ahead));
  if (!all.length) return null;
  let x0 = Math.min(...all.map((p) => p[0])), x1 = Math.max(...all.map((p) => p[0]));
  const amends = state.amendments.map((a) => ({a, epoch: Number(a.atEpoch)}));
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  let y0 = Math.min(...all.map((p) => p[1])), y1 = Math.max(...all.map((p) => p[1]));
  if (y0 >= 0 && y0 < 0.5 * y1) y0 = 0;
  if (y1 === y0) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
  const pad = (y1 - y0) * 0.05;
  y1 += pad;
  if (y0 !== 0) y0 -= pad;
  const X = (e) => m.l + (e - x0) / (x1 - x0) * (W - m.l - m.r);
  const Y = (v) => H - m.b - (v - y0) / (y1 - y0) * (H - m.t - m.b);
  const pts = (list) => decimate(list).map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`)
      .join(' ');

  const s = svg('svg', {viewBox: `0 0 ${W} ${H}`, 'data-kind': kind, role: 'img',
                        'aria-label': `${title} against epoch`});
  for (const v of niceTicks(y0, y1, 5)) {
    s.append(svg('line', {class: 'grid', x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v)}));
    s.append(svg('text', {x: m.l - 6, y: Y(v) + 4, 'text-anchor': 'end'}, fmt(v)));
  }
  for (const e of niceTicks(x0, x1, 10)) {
    s.append(svg('line', {class: 'axis', x1: X(e), x2: X(e), y1: H - m.b, y2: H - m.b + 4}));
    s.append(svg('text', {x: X(e), y: H - m.b + 16, 'text-anchor': 'middle'}, fmt(e)));
  }
  s.append(svg('line', {class: 'axis', x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b}));
  s.append(svg('line', {class: 'axis', x1: m.l, x2: m.l, y1: m.t, y2: H - m.b}));
  const now = Number(state.session.lastEpoch);
  if (now >= x0 && now <= x1) {
    s.append(svg('line', {class: 'now', x1: X(now), x2: X(now), y1: m.t, y2: H - m.b}));
  }
  for (const {a, epoch} of amends) {
    if (epoch < x0 || epoch > x1) continue;
    const g = svg('g', {class: 'amend', 'data-kind': a.kind, 'data-epoch': epoch});
    g.append(svg('title', {}, `epoch ${epoch}: ${a.kind} ${a.argsJson || ''} ${a.reason || ''}`));
    g.append(svg('line', {x1: X(epoch), x2: X(epoch), y1: m.t - 4, y2: H - m.b}));
    if (kind === 'lr') {
      const right = X(epoch) > W * 0.7;
      g.append(svg('text', {x: X(epoch) + (right ? -4 : 4), y: m.t - 8,
                            'text-anchor': right ? 'end' : 'start'}, amendmentLabel(a)));
    }
    s.append(g);
  }
  for (const {g, past, ahead} of series) {
    const cls = `g${g % 8}`;
    if (past.length) {
      s.append(svg('polyline', {class: `past ${cls}`, 'data-group': g, 'data-count': past.length,
                                'data-first': past[0][0],
                                'data-last': past[past.length - 1][0], points: pts(past)}));
    }
    if (ahead.length) {
      s.append(svg('polyline', {class: `ahead ${cls}`, 'data-group': g,
                                'data-count': ahead.length, 'data-first': ahead[0][0],
                                'data-last': ahead[ahead.length - 1][0], points: pts(ahead)}));
    }
  }
  const legend = el('div', {class: 'legend'},
                    ...series.map(({g}) => el('span', {}, el('i', {class: `g${g % 8}`}),
                                              `group ${g}`)),
                    el('span', {}, 'solid: served (the record) · dashed: lookahead'));
  return el('div', {class: 'chart', 'data-kind': kind}, el('h2', {}, title), s, legend);
}

// Whether any group's `kind` takes more than one value over the record and the lookahead.
export function changes(state, kind) {
  const seen = new Map();
  for (const map of [state.past, state.ahead]) {
    for (const groups of map.values()) {
      for (let g = 0; g < groups.length; g++) {
        const v = num(groups[g][kind]);
        if (v === undefined) continue;
        if (!seen.has(g)) seen.set(g, v);
        else if (seen.get(g) !== v) return true;
      }
    }
  }
  return false;
}
