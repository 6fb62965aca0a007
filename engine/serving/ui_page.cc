#include "engine/serving/ui_page.h"

namespace kcqrs::engine {
namespace {

// Kept as one literal so that the page needs no build step and no files at
// run time. Every value from the server goes into the DOM through
// textContent or setAttribute, never innerHTML: store keys, values and
// topic names are user data.
constexpr std::string_view kPage = R"kcqrs_page(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kcqrs</title>
<style>
:root {
  --bg: #f4f5f7; --card: #fff; --fg: #1c222b; --muted: #66707d; --line: #dfe3e8;
  --accent: #2563c4; --ok: #1f8a4c; --warn: #b7791f; --bad: #c53030;
  --topic: #edf3fc; --topic-line: #93afd9; --store: #fdf5e4; --store-line: #d3a955;
  --edge: #8d98a6; --code: #f1f3f6;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #13161b; --card: #1c2027; --fg: #e2e6eb; --muted: #98a2af; --line: #30363f;
    --accent: #6fa1ff; --topic: #1e2a3b; --topic-line: #48679a; --store: #2c2616;
    --store-line: #8c7135; --edge: #6b7582; --code: #242a33;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
header { display: flex; align-items: center; gap: 14px; padding: 10px 18px;
  background: #1c222b; color: #fff; }
header h1 { margin: 0; font-size: 16px; font-weight: 600; }
header h1 span { color: #9fb3cc; font-weight: 400; }
.badge { padding: 2px 10px; border-radius: 999px; font-size: 12px; font-weight: 700;
  letter-spacing: .05em; text-transform: uppercase; }
.badge.ok { background: var(--ok); } .badge.warn { background: var(--warn); }
.badge.bad { background: var(--bad); }
#ready-why { color: #f3c0c0; font-size: 12px; }
.chips { display: flex; gap: 6px; flex-wrap: wrap; }
.chip { font-size: 11px; padding: 1px 8px; border-radius: 4px; background: #343c48; color: #dfe5ec; }
.chip.RUNNING { background: #1d5a37; } .chip.FAILED { background: #8a2222; }
.chip.STARTING { background: #6b5314; }
#updated { margin-left: auto; color: #a9b3bf; font-size: 12px; }
main { display: grid; grid-template-columns: minmax(0, 1fr) 430px; gap: 14px; padding: 14px 18px; }
.col { display: flex; flex-direction: column; gap: 14px; min-width: 0; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px 12px; }
.card h2 { margin: 0 0 8px; font-size: 11px; font-weight: 600; letter-spacing: .07em;
  text-transform: uppercase; color: var(--muted); display: flex; gap: 12px; align-items: baseline; }
.legend { display: flex; gap: 12px; flex-wrap: wrap; font-size: 11px; font-weight: 400;
  text-transform: none; letter-spacing: 0; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px;
  vertical-align: -1px; }
#graph svg { display: block; width: 100%; height: auto; margin: 0 auto; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
.g-topic rect { fill: var(--topic); stroke: var(--topic-line); }
.g-dlq rect { fill: var(--card); stroke: var(--bad); stroke-dasharray: 4 3; }
.g-node rect.box { fill: var(--card); stroke-width: 1.5; }
.g-store path { fill: var(--store); stroke: var(--store-line); }
.g-store path.rim { fill: none; }
.t-name { fill: var(--fg); font-size: 12px; font-weight: 600; }
.t-sub { fill: var(--muted); font-size: 11px; }
.t-rate { fill: var(--accent); font-size: 11px; font-weight: 600; }
.edge { fill: none; stroke: var(--edge); stroke-width: 1.3; }
.edge.store { stroke: var(--store-line); stroke-dasharray: 3 2; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 500; font-size: 11px; }
.num { text-align: right; white-space: nowrap; }
.nowrap { white-space: nowrap; }
.part { margin-right: 10px; white-space: nowrap; }
.rate { color: var(--accent); }
.muted { color: var(--muted); }
.totals { display: grid; grid-template-columns: repeat(3, 1fr); gap: 8px 12px; }
.metric .v { font-size: 17px; font-weight: 600; font-variant-numeric: tabular-nums; }
.metric .k { color: var(--muted); font-size: 11px; }
.metric .r { color: var(--accent); font-size: 11px; margin-left: 4px; }
.notice { color: var(--bad); }
form { display: flex; gap: 6px; }
select, input, button { font: inherit; padding: 4px 7px; border: 1px solid var(--line); border-radius: 5px;
  background: var(--card); color: var(--fg); }
input { flex: 1; min-width: 0; }
button { background: var(--accent); border-color: var(--accent); color: #fff; cursor: pointer; }
#lookup-result { margin-top: 8px; }
pre { margin: 6px 0 0; padding: 8px; background: var(--code); border-radius: 6px; max-height: 200px;
  overflow: auto; white-space: pre-wrap; word-break: break-all;
  font: 12px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; }
code { font: 12px ui-monospace, "DejaVu Sans Mono", monospace; }
.status { font-weight: 600; } .status.ok { color: var(--ok); } .status.bad { color: var(--bad); }
.problem { margin-top: 6px; padding: 6px 10px; border-left: 3px solid var(--bad); background: var(--code); }
.problem .title { font-weight: 600; }
@media (max-width: 1000px) { main { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<header>
  <h1>kcqrs <span id="app"></span></h1>
  <span id="ready" class="badge bad">not ready</span>
  <span id="ready-why"></span>
  <div id="threads" class="chips"></div>
  <span id="updated">connecting…</span>
</header>
<main>
  <div class="col">
    <section class="card">
      <h2>Topology <span id="legend" class="legend"></span></h2>
      <div id="graph"><p class="muted">Loading the topology…</p></div>
    </section>
    <section class="card">
      <h2>Processors</h2>
      <div id="nodes"></div>
    </section>
  </div>
  <div class="col">
    <section class="card">
      <h2>Totals</h2>
      <div id="totals" class="totals"></div>
    </section>
    <section class="card">
      <h2>Stores</h2>
      <div id="stores"></div>
    </section>
    <section class="card">
      <h2>Look up a key</h2>
      <form id="lookup-form" autocomplete="off">
        <select id="lookup-store" aria-label="store"></select>
        <input id="lookup-key" placeholder="key" aria-label="key">
        <button type="submit">Get</button>
      </form>
      <div id="lookup-result"></div>
    </section>
    <section class="card">
      <h2>Consumer lag</h2>
      <div id="lag"></div>
    </section>
  </div>
</main>
<script>
'use strict';
const REFRESH_MS = 2000;
const SVG_NS = 'http://www.w3.org/2000/svg';
const COLORS = ['#2563c4', '#8e44ad', '#17876b', '#c2571f', '#a3366d', '#4f6d8a', '#7a8a12'];
const TOTALS = [
  ['records_processed', 'records processed'], ['dead_letters', 'dead letters'],
  ['commits', 'commits'], ['aborts', 'aborts'], ['restored_records', 'restored records'],
  ['rebalances', 'rebalances']];

const S = {
  topologyText: null, topology: null, topologyProblem: null,
  stats: null, statsProblem: null, last: null, rates: {}, nodeRates: {},
  lookupDone: false,
};

const $ = (id) => document.getElementById(id);

// Builds an element; strings become text nodes, so nothing is parsed as HTML.
function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v; else e.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function s(tag, attrs, text) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
}

const isNum = (n) => typeof n === 'number' && isFinite(n);
const fmt = (n) => isNum(n) ? Math.round(n).toLocaleString('en-US') : '–';
function fmtRate(r) {
  if (!isNum(r)) return '–/s';
  return (r >= 100 ? Math.round(r).toLocaleString('en-US') : r.toFixed(1)) + '/s';
}

let measurer = null;
function textWidth(text, font) {
  if (!measurer) measurer = document.createElement('canvas').getContext('2d');
  measurer.font = font;
  return measurer.measureText(String(text)).width;
}

async function getJson(url) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 5000);
  try {
    const r = await fetch(url, {cache: 'no-store', signal: ctl.signal,
                                headers: {Accept: 'application/json'}});
    const text = await r.text();
    let body = null;
    try { body = JSON.parse(text); } catch (e) { body = null; }
    return {ok: r.ok, status: r.status, statusText: r.statusText, text, body};
  } catch (e) {
    return {ok: false, status: 0, statusText: '', text: String(e), body: null};
  } finally {
    clearTimeout(timer);
  }
}

function problemText(what, r) {
  if (r.status === 0) return what + ': no answer from the server';
  let t = what + ': ' + r.status;
  if (r.body && typeof r.body === 'object') {
    if (r.body.title) t += ' ' + r.body.title;
    if (r.body.detail) t += ' (' + r.body.detail + ')';
  } else if (r.statusText) {
    t += ' ' + r.statusText;
  }
  return t;
}

function validTopology(t) {
  return t && typeof t === 'object' && Array.isArray(t.subtopologies);
}
function validStats(t) { return t && typeof t === 'object' && !Array.isArray(t); }

// ------------------------------------------------------------- refresh

async function refresh() {
  const [topo, stats] = await Promise.all([getJson('topology'), getJson('stats')]);
  const now = performance.now();
  if (topo.ok && validTopology(topo.body)) {
    S.topologyProblem = null;
    if (topo.text !== S.topologyText) {
      S.topologyText = topo.text;
      S.topology = topo.body;
      fillStoreChoices();
    }
  } else {
    S.topologyProblem = problemText('GET /topology', topo);
  }
  if (stats.ok && validStats(stats.body)) {
    S.statsProblem = null;
    computeRates(stats.body, now);
    S.stats = stats.body;
  } else {
    S.statsProblem = problemText('GET /stats', stats);
    S.stats = null;
  }
  render();
  maybeLookupFromUrl();
  setTimeout(refresh, REFRESH_MS);
}

function computeRates(stats, now) {
  const prev = S.last;
  S.rates = {};
  S.nodeRates = {};
  if (prev) {
    const dt = (now - prev.t) / 1000;
    const rate = (a, b) => (isNum(a) && isNum(b) && dt > 0 && a >= b) ? (a - b) / dt : null;
    const tot = stats.totals || {}, ptot = prev.stats.totals || {};
    for (const [k] of TOTALS) S.rates[k] = rate(tot[k], ptot[k]);
    const nodes = stats.nodes || {}, pnodes = prev.stats.nodes || {};
    for (const name of Object.keys(nodes)) {
      S.nodeRates[name] = rate((nodes[name] || {}).processed, (pnodes[name] || {}).processed);
    }
  }
  S.last = {t: now, stats};
}

function render() {
  renderHeader();
  renderGraph();
  renderNodes();
  renderTotals();
  renderStores();
  renderLag();
}

function renderHeader() {
  const st = S.stats;
  const app = (st && st.application) || (S.topology && S.topology.application) || '';
  $('app').textContent = app;
  document.title = app ? 'kcqrs · ' + app : 'kcqrs';
  const badge = $('ready');
  const why = $('ready-why');
  if (!st) {
    badge.className = 'badge bad';
    badge.textContent = 'not ready';
    why.textContent = S.statsProblem || '';
  } else if (st.ready === true) {
    badge.className = 'badge ok';
    badge.textContent = 'ready';
    why.textContent = '';
  } else {
    badge.className = 'badge warn';
    badge.textContent = 'not ready';
    why.textContent = 'starting, rebalancing or restoring';
  }
  const threads = $('threads');
  threads.replaceChildren();
  for (const t of (st && Array.isArray(st.threads)) ? st.threads : []) {
    const state = String(t.state || '?');
    threads.append(h('span', {class: 'chip ' + state.replace(/[^A-Z]/g, '')},
                     'thread ' + t.index + ' · ' + state));
  }
  $('updated').textContent = 'updated ' + new Date().toLocaleTimeString('en-GB');
}

// ------------------------------------------------------------- the graph

function subColor(id) { return COLORS[Math.abs(Number(id) || 0) % COLORS.length]; }

function lagOf(topic) {
  const l = S.stats && S.stats.lag && S.stats.lag[topic];
  if (!l || typeof l !== 'object') return null;
  let sum = 0, n = 0;
  for (const v of Object.values(l)) { if (isNum(v)) { sum += v; n++; } }
  return n ? {sum, n} : null;
}

function storeStats(name) {
  const list = S.stats && Array.isArray(S.stats.stores) ? S.stats.stores : [];
  return list.find((x) => x && x.name === name) || null;
}

function nodeProcessed(name) {
  const n = S.stats && S.stats.nodes && S.stats.nodes[name];
  return n && isNum(n.processed) ? n.processed : null;
}

// A layered drawing, top to bottom: topics and processors alternate (a
// topic sits one row above its first reader and below its writer), stores
// hang beside their processor, the dead-letter topic sits in the last row.
function layout(topo) {
  const dlq = topo.dead_letter_topic;
  const items = new Map();
  const edges = [];
  const topic = (name) => {
    const id = 't:' + name;
    if (!items.has(id)) items.set(id, {id, type: 'topic', name, preds: [], succs: []});
    return items.get(id);
  };
  for (const st of topo.subtopologies) {
    (st.nodes || []).forEach((n, i) => {
      const it = {id: 'n:' + st.id + ':' + i, type: 'node', name: String(n.name), node: n,
                  sub: st, preds: [], succs: []};
      items.set(it.id, it);
      for (const src of n.sources || []) {
        const t = topic(src);
        edges.push([t, it]); t.succs.push(it); it.preds.push(t);
      }
      for (const sink of n.sinks || []) {
        if (sink === dlq) continue;  // every node has it: shown once, at the bottom
        const t = topic(sink);
        edges.push([it, t]); it.succs.push(t); t.preds.push(it);
      }
    });
  }
  const all = [...items.values()];
  for (const it of all) it.layer = 0;
  // Longest path; the pass limit keeps a cyclic graph from looping forever.
  for (let pass = 0; pass <= all.length; pass++) {
    let changed = false;
    for (const [a, b] of edges) {
      if (b.layer < a.layer + 1) { b.layer = a.layer + 1; changed = true; }
    }
    if (!changed) break;
  }
  for (const it of all) {
    if (it.preds.length === 0 && it.succs.length) {
      it.layer = Math.max(0, Math.min(...it.succs.map((x) => x.layer)) - 1);
    }
  }
  const depth = all.reduce((m, it) => Math.max(m, it.layer), -1) + 1;
  const rows = Array.from({length: depth}, () => []);
  for (const it of all) rows[it.layer].push(it);
  if (dlq) rows.push([{id: 'dlq', type: 'dlq', name: dlq, preds: [], succs: []}]);
  // Order each row by the mean position of what feeds it (barycentre).
  for (let pass = 0; pass < 2; pass++) {
    rows.forEach((row, r) => {
      row.forEach((it, i) => { it.pos = i / Math.max(1, row.length); });
      if (r === 0) return;
      const key = (it) => it.preds.length
        ? it.preds.reduce((a, p) => a + p.pos, 0) / it.preds.length : it.pos;
      row.sort((a, b) => key(a) - key(b));
      row.forEach((it, i) => { it.pos = i / Math.max(1, row.length); });
    });
  }
  return {rows, edges};
}

const NAME_FONT = '600 12px system-ui, sans-serif';
const SUB_FONT = '11px system-ui, sans-serif';
const ROW_H = 84, GAP = 28, PAD = 16, STORE_GAP = 22;

function sizeItem(it) {
  if (it.type === 'node') {
    it.lines = [it.name, it.node.kind + ' · sub-topology ' + it.sub.id];
    const p = nodeProcessed(it.name);
    it.rate = fmt(p) + ' · ' + fmtRate(S.nodeRates[it.name]);
    it.w = Math.max(130, ...[it.lines[0]].map((t) => textWidth(t, NAME_FONT)),
                    textWidth(it.lines[1], SUB_FONT), textWidth(it.rate, SUB_FONT)) + 26;
    it.h = 56;
    it.stores = (it.node.stores || []).map((name) => {
      const ss = storeStats(name);
      const st = {name: String(name), keys: ss && isNum(ss.keys) ? fmt(ss.keys) + ' keys' : '– keys'};
      st.w = Math.max(textWidth(st.name, NAME_FONT), textWidth(st.keys, SUB_FONT)) + 28;
      return st;
    });
    it.groupW = it.w + it.stores.reduce((a, st) => a + STORE_GAP + st.w, 0);
  } else {
    let sub;
    if (it.type === 'dlq') {
      const d = S.stats && S.stats.totals ? S.stats.totals.dead_letters : null;
      sub = 'dead letters of every node · ' + fmt(d);
    } else {
      const lag = lagOf(it.name);
      if (lag) sub = 'lag ' + fmt(lag.sum) + ' · ' + lag.n + (lag.n === 1 ? ' partition' : ' partitions');
      else if (it.succs.length) sub = 'lag –';
      else sub = 'output';
    }
    it.lines = [it.name, sub];
    it.w = Math.max(textWidth(it.name, NAME_FONT), textWidth(sub, SUB_FONT)) + 36;
    it.h = 40;
    it.groupW = it.w;
  }
}

function renderGraph() {
  const box = $('graph');
  const topo = S.topology;
  if (!topo) {
    box.replaceChildren(h('p', {class: 'notice'}, 'Topology not available: not ready. ',
                          h('span', {class: 'muted'}, S.topologyProblem || '')));
    $('legend').replaceChildren();
    return;
  }
  const {rows, edges} = layout(topo);
  for (const row of rows) for (const it of row) sizeItem(it);
  const rowW = rows.map((row) => row.reduce((a, it) => a + it.groupW, 0) + GAP * (row.length - 1));
  const W = Math.max(560, ...rowW) + 2 * PAD;
  const H = PAD * 2 + rows.length * ROW_H - (ROW_H - 56);
  rows.forEach((row, r) => {
    let x = (W - rowW[r]) / 2;
    for (const it of row) {
      it.x = x;
      it.y = PAD + r * ROW_H + (56 - it.h) / 2;
      x += it.groupW + GAP;
    }
  });

  // Scales down to fit a narrow window, never up (text stays at its size).
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img',
                        style: `max-width:${W}px`,
                        'aria-label': 'topology of ' + (topo.application || '')});
  const defs = s('defs');
  const marker = s('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5,
                              markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'});
  marker.append(s('path', {d: 'M0,0 L10,5 L0,10 z', fill: 'var(--edge)'}));
  defs.append(marker);
  svg.append(defs);

  const edgeLayer = s('g');
  svg.append(edgeLayer);
  for (const [a, b] of edges) {
    const x1 = a.x + a.w / 2, y1 = a.y + a.h, x2 = b.x + b.w / 2, y2 = b.y;
    const dy = Math.max(20, (y2 - y1) / 2);
    edgeLayer.append(s('path', {class: 'edge', 'marker-end': 'url(#arrow)',
                                d: `M${x1},${y1} C${x1},${y1 + dy} ${x2},${y2 - dy} ${x2},${y2 - 1}`}));
  }

  for (const row of rows) {
    for (const it of row) {
      if (it.type === 'node') drawNode(svg, edgeLayer, it);
      else drawTopic(svg, it);
    }
  }
  box.replaceChildren(svg);

  const legend = $('legend');
  legend.replaceChildren();
  for (const st of topo.subtopologies) {
    const p = isNum(st.partitions) ? st.partitions + (st.partitions === 1 ? ' task' : ' tasks') : '? tasks';
    legend.append(h('span', {}, h('i', {style: 'background:' + subColor(st.id)}),
                    'sub-topology ' + st.id + ' · ' + p));
  }
}

function drawTopic(svg, it) {
  const g = s('g', {class: it.type === 'dlq' ? 'g-dlq' : 'g-topic'});
  g.append(s('title', {}, (it.type === 'dlq' ? 'dead-letter topic ' : 'topic ') + it.name));
  g.append(s('rect', {x: it.x, y: it.y, width: it.w, height: it.h, rx: it.h / 2}));
  g.append(s('text', {class: 't-name', x: it.x + it.w / 2, y: it.y + 17, 'text-anchor': 'middle'},
             it.lines[0]));
  g.append(s('text', {class: 't-sub', x: it.x + it.w / 2, y: it.y + 31, 'text-anchor': 'middle'},
             it.lines[1]));
  svg.append(g);
}

function drawNode(svg, edgeLayer, it) {
  const color = subColor(it.sub.id);
  const g = s('g', {class: 'g-node'});
  g.append(s('title', {}, it.node.kind + ' ' + it.name));
  g.append(s('rect', {class: 'box', x: it.x, y: it.y, width: it.w, height: it.h, rx: 6,
                      stroke: color}));
  g.append(s('rect', {x: it.x, y: it.y, width: 5, height: it.h, rx: 2, fill: color}));
  g.append(s('text', {class: 't-name', x: it.x + 14, y: it.y + 17}, it.lines[0]));
  g.append(s('text', {class: 't-sub', x: it.x + 14, y: it.y + 32}, it.lines[1]));
  g.append(s('text', {class: 't-rate', x: it.x + 14, y: it.y + 47}, it.rate));
  svg.append(g);
  let x = it.x + it.w;
  for (const st of it.stores) {
    const sx = x + STORE_GAP, sy = it.y + 2, w = st.w, hh = it.h - 4, e = 6, rx = w / 2;
    edgeLayer.append(s('path', {class: 'edge store', d: `M${x},${it.y + it.h / 2} H${sx}`}));
    const sg = s('g', {class: 'g-store'});
    sg.append(s('title', {}, 'store ' + st.name));
    sg.append(s('path', {d: `M${sx},${sy + e} A${rx},${e} 0 0 1 ${sx + w},${sy + e} ` +
                            `V${sy + hh - e} A${rx},${e} 0 0 1 ${sx},${sy + hh - e} Z`}));
    sg.append(s('path', {class: 'rim', d: `M${sx},${sy + e} A${rx},${e} 0 0 0 ${sx + w},${sy + e}`}));
    sg.append(s('text', {class: 't-name', x: sx + w / 2, y: sy + e + 17, 'text-anchor': 'middle'},
                st.name));
    sg.append(s('text', {class: 't-sub', x: sx + w / 2, y: sy + e + 32, 'text-anchor': 'middle'},
                st.keys));
    svg.append(sg);
    x = sx + w;
  }
}

// ------------------------------------------------------------- tables

function notReady(what) {
  return h('p', {class: 'notice'}, what + ': not ready. ',
           h('span', {class: 'muted'}, S.statsProblem || ''));
}

function renderNodes() {
  const box = $('nodes');
  const topo = S.topology;
  if (!topo) { box.replaceChildren(h('p', {class: 'muted'}, 'not ready')); return; }
  const tbody = h('tbody');
  for (const st of topo.subtopologies) {
    for (const n of st.nodes || []) {
      const name = String(n.name);
      tbody.append(h('tr', {},
        h('td', {class: 'nowrap'}, h('i', {style: 'display:inline-block;width:8px;height:8px;border-radius:2px;' +
                                   'margin-right:6px;background:' + subColor(st.id)}), String(st.id)),
        h('td', {}, name), h('td', {class: 'muted'}, n.kind),
        h('td', {class: 'muted'}, (n.sources || []).join(', ')),
        h('td', {class: 'muted'}, (n.sinks || []).join(', ')),
        h('td', {class: 'num'}, fmt(nodeProcessed(name))),
        h('td', {class: 'num rate'}, fmtRate(S.nodeRates[name]))));
    }
  }
  box.replaceChildren(h('table', {},
    h('thead', {}, h('tr', {}, h('th', {}, 'sub'), h('th', {}, 'node'), h('th', {}, 'kind'),
                    h('th', {}, 'reads'), h('th', {}, 'writes'), h('th', {class: 'num'}, 'processed'),
                    h('th', {class: 'num'}, 'rate'))),
    tbody));
}

function renderTotals() {
  const box = $('totals');
  const t = S.stats && S.stats.totals;
  if (!t) { box.replaceChildren(notReady('Totals')); return; }
  box.replaceChildren(...TOTALS.map(([k, label]) => h('div', {class: 'metric'},
    h('div', {}, h('span', {class: 'v'}, fmt(t[k])), h('span', {class: 'r'}, fmtRate(S.rates[k]))),
    h('div', {class: 'k'}, label))));
}

function renderStores() {
  const box = $('stores');
  const kinds = {};
  for (const st of (S.topology && S.topology.stores) || []) kinds[st.name] = st;
  const list = S.stats && Array.isArray(S.stats.stores) ? S.stats.stores : null;
  if (!list) { box.replaceChildren(notReady('Stores')); return; }
  const tbody = h('tbody');
  for (const st of list) {
    const hosted = Array.isArray(st.hosted) ? st.hosted.join(', ') : '';
    const spec = kinds[st.name];
    tbody.append(h('tr', {},
      h('td', {class: 'nowrap'}, String(st.name)),
      h('td', {class: 'muted'}, spec ? spec.kind : ''),
      h('td', {class: 'num'}, fmt(st.keys)),
      h('td', {class: 'num'}, fmt(st.partitions)),
      h('td', {}, hosted || '–')));
  }
  box.replaceChildren(h('table', {},
    h('thead', {}, h('tr', {}, h('th', {}, 'store'), h('th', {}, 'kind'),
                    h('th', {class: 'num'}, 'keys (est.)'), h('th', {class: 'num'}, 'partitions'),
                    h('th', {class: 'nowrap'}, 'hosted here'))),
    tbody));
}

function renderLag() {
  const box = $('lag');
  const lag = S.stats && S.stats.lag;
  if (!lag || typeof lag !== 'object') { box.replaceChildren(notReady('Lag')); return; }
  const tbody = h('tbody');
  for (const topic of Object.keys(lag).sort()) {
    const parts = lag[topic] && typeof lag[topic] === 'object' ? lag[topic] : {};
    const ids = Object.keys(parts).sort((a, b) => Number(a) - Number(b));
    const total = ids.reduce((a, p) => a + (isNum(parts[p]) ? parts[p] : 0), 0);
    tbody.append(h('tr', {}, h('td', {class: 'nowrap'}, topic), h('td', {class: 'num'}, fmt(total)),
      h('td', {class: 'muted'},
        ...ids.map((p) => h('span', {class: 'part'}, 'p' + p + ' ' + fmt(parts[p]))))));
  }
  if (!tbody.children.length) {
    tbody.append(h('tr', {}, h('td', {colspan: 3, class: 'muted'}, 'no lag reported')));
  }
  box.replaceChildren(h('table', {},
    h('thead', {}, h('tr', {}, h('th', {}, 'topic'), h('th', {class: 'num'}, 'lag'),
                    h('th', {}, 'by partition'))),
    tbody));
}

// ------------------------------------------------------------- lookup

function fillStoreChoices() {
  const sel = $('lookup-store');
  const was = sel.value;
  const names = ((S.topology && S.topology.stores) || []).map((st) => String(st.name));
  sel.replaceChildren(...names.map((n) => h('option', {value: n}, n)));
  if (names.includes(was)) sel.value = was;
}

async function lookup(ev) {
  if (ev) ev.preventDefault();
  const store = $('lookup-store').value;
  const key = $('lookup-key').value;
  const out = $('lookup-result');
  if (!store || key === '') {
    out.replaceChildren(h('p', {class: 'muted'}, 'Choose a store and type a key.'));
    return;
  }
  const path = 'stores/' + encodeURIComponent(store) + '/keys/' + encodeURIComponent(key);
  out.replaceChildren(h('p', {class: 'muted'}, 'GET /' + path + ' …'));
  const r = await getJson(path);
  const head = h('div', {}, h('code', {}, 'GET /' + path), ' → ',
                 h('span', {class: 'status ' + (r.ok ? 'ok' : 'bad')},
                   r.status ? String(r.status) : 'no answer'));
  if (r.ok) {
    out.replaceChildren(head, h('pre', {id: 'lookup-value'},
                                r.body !== null ? JSON.stringify(r.body, null, 2) : r.text));
  } else if (r.body && typeof r.body === 'object' && (r.body.title || r.body.detail)) {
    out.replaceChildren(head, h('div', {class: 'problem', id: 'lookup-problem'},
      h('div', {class: 'title'}, String(r.body.title || '')),
      h('div', {}, String(r.body.detail || '')),
      r.body.type && r.body.type !== 'about:blank' ? h('div', {class: 'muted'}, String(r.body.type)) : null));
  } else {
    out.replaceChildren(head, h('div', {class: 'problem', id: 'lookup-problem'},
      r.status === 503 || r.status === 0 ? 'not ready' : (r.text || r.statusText)));
  }
}

// `/?store=orders&key=o-1` looks the key up once the stores are known.
function maybeLookupFromUrl() {
  if (S.lookupDone || !S.topology) return;
  S.lookupDone = true;
  const q = new URLSearchParams(location.search);
  const store = q.get('store'), key = q.get('key');
  if (store !== null && [...$('lookup-store').options].some((o) => o.value === store)) {
    $('lookup-store').value = store;
  }
  if (key !== null) {
    $('lookup-key').value = key;
    lookup();
  }
}

$('lookup-form').addEventListener('submit', lookup);
refresh();
</script>
</body>
</html>
)kcqrs_page";

}  // namespace

std::string_view UiPageHtml() { return kPage; }

}  // namespace kcqrs::engine
