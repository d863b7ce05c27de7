// Lays an app out as a layered graph, left to right: event sources →
// channels → actions → the channels their outputs feed, and so on. No
// graph library: apps are small (a handful of channels), so a longest-path
// layering with barycentre placement is enough. Outputs that go back to
// the same or an earlier layer are loops and drawn as arcs around the
// graph instead of lines through it. An action's onError channel is drawn
// like an output (an arc too when it goes back), as an "on error" edge.
import type { ActionView, AppView, OutputView, SourceView } from './model';

export type NodeKind = 'source' | 'channel' | 'action';
export type EdgeKind = 'source' | 'action' | 'output' | 'loop' | 'error';

export interface GNode {
  id: string; // source-<channel>-<i|api>, channel-<name> or action-<name>
  kind: NodeKind;
  channel: string;
  tag: string; // the kind pill: TIMER, CHANNEL, WEBHOOK, …
  title: string;
  detail?: string;
  action?: ActionView;
  source?: SourceView; // absent for the API pseudo-source
  col: number;
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface GEdge {
  id: string;
  from: string;
  to: string;
  kind: EdgeKind;
  label?: string;
  arc?: boolean; // drawn around the graph: a loop, or an onError edge going back
  path: string;
  lx: number;
  ly: number;
}

export interface Layout {
  nodes: GNode[];
  edges: GEdge[];
  width: number;
  height: number;
}

// Node widths by kind: actions carry the most text (a condition).
const WIDTH: Record<NodeKind, number> = { source: 168, channel: 150, action: 184 };
const GAP_X = 64;
const GAP_Y = 18;
const MARGIN = 20;
const LANE = 24; // vertical distance between loop arcs on one side
const ERR_OFFSET = 8; // an onError edge runs this far below its action's output

/** sourceText is a source's main line and detail line. */
export function sourceText(s: SourceView): [string, string | undefined] {
  switch (s.kind) {
    case 'timer':
      if (s.interval) return [`every ${s.interval}`, s.payload !== undefined ? 'with a payload' : undefined];
      return [`cron ${s.cron}`, s.timezone && s.timezone !== 'UTC' ? s.timezone : 'UTC'];
    case 'device':
      return s.deviceId ? [`device ${s.deviceId}`, undefined] : [`group ${s.groupId}`, 'every device in it'];
    case 'files': {
      const ev: string[] = s.events || [];
      return [`files ${s.prefix}`, ev.length && ev.length < 3 ? ev.join(', ') : 'created, updated, deleted'];
    }
    case 'webhook':
      return ['incoming webhook', 'secret URL'];
  }
  return [s.kind, undefined];
}

/** outputLabel names what an output does besides sending the result on. */
export function outputLabel(a: ActionView): string {
  return optionsLabel(a.output);
}

/** optionsLabel names an output's (or onError's) options: delay, forEach, transform. */
export function optionsLabel(o: OutputView | undefined): string {
  if (!o) return '';
  const parts: string[] = [];
  if (o.delay) parts.push(`delay ${o.delay}`);
  if (o.forEach) parts.push('forEach');
  if (o.transform !== undefined) parts.push('transform');
  return parts.join(' · ');
}

export function layoutApp(app: AppView): Layout {
  const chans = app.channels;
  const targets = new Map<string, string[]>();
  const fedByOthers = new Set<string>();
  for (const c of chans) {
    const t = c.actions.flatMap((a) => [a.output?.channel, a.onError?.channel]).filter((x): x is string => !!x);
    targets.set(c.name, t);
    t.forEach((x) => x !== c.name && fedByOthers.add(x));
  }

  // Back edges by depth-first search from the channels events enter at,
  // in file order; what remains is acyclic and gives each channel a layer
  // (the longest path to it).
  const state = new Map<string, 'open' | 'done'>();
  const back = new Set<string>();
  const visit = (u: string) => {
    state.set(u, 'open');
    for (const v of targets.get(u) || []) {
      if (state.get(v) === 'open') back.add(u + '>' + v);
      else if (!state.has(v)) visit(v);
    }
    state.set(u, 'done');
  };
  chans.filter((c) => c.sources.length > 0 || !fedByOthers.has(c.name)).forEach((c) => state.has(c.name) || visit(c.name));
  chans.forEach((c) => state.has(c.name) || visit(c.name));
  const rank = new Map<string, number>(chans.map((c) => [c.name, 0]));
  for (let i = 0; i < chans.length; i++) {
    for (const c of chans) {
      for (const t of targets.get(c.name) || []) {
        if (!back.has(c.name + '>' + t)) rank.set(t, Math.max(rank.get(t)!, rank.get(c.name)! + 1));
      }
    }
  }

  const nodes: GNode[] = [];
  const edges: GEdge[] = [];
  const node = (n: Omit<GNode, 'x' | 'y' | 'w' | 'h'>) => {
    const g = { ...n, x: 0, y: 0, w: WIDTH[n.kind], h: n.detail ? 62 : 46 };
    nodes.push(g);
    return g;
  };
  const edge = (from: string, to: string, kind: EdgeKind, label?: string, arc = kind === 'loop') =>
    edges.push({ id: `edge-${from}-${to}${kind === 'error' ? '-onerror' : ''}`, from, to, kind, label, arc, path: '', lx: 0, ly: 0 });

  for (const c of chans) {
    const r = rank.get(c.name)!;
    const chId = `channel-${c.name}`;
    c.sources.forEach((s, i) => {
      const [title, detail] = sourceText(s);
      const id = `source-${c.name}-${i}`;
      node({ id, kind: 'source', channel: c.name, tag: s.kind.toUpperCase(), title, detail, source: s, col: 2 * r });
      edge(id, chId, 'source');
    });
    // Any channel takes API messages; draw that entry only where nothing
    // else feeds the channel, so the graph shows where events come in.
    if (c.sources.length === 0 && !fedByOthers.has(c.name)) {
      const id = `source-${c.name}-api`;
      node({ id, kind: 'source', channel: c.name, tag: 'API', title: 'messages & test runs', detail: 'manual', col: 2 * r });
      edge(id, chId, 'source');
    }
    node({ id: chId, kind: 'channel', channel: c.name, tag: 'CHANNEL', title: c.name, detail: c.description || undefined, col: 2 * r + 1 });
    for (const a of c.actions) {
      const id = `action-${a.name}`;
      node({ id, kind: 'action', channel: c.name, tag: a.kind.toUpperCase(), title: a.name, detail: a.condition ? `if ${a.condition}` : undefined, action: a, col: 2 * r + 2 });
      edge(chId, id, 'action');
    }
  }
  for (const c of chans) {
    for (const a of c.actions) {
      if (a.output) {
        const loop = rank.get(a.output.channel)! <= rank.get(c.name)!;
        edge(`action-${a.name}`, `channel-${a.output.channel}`, loop ? 'loop' : 'output', outputLabel(a) || undefined);
      }
      if (a.onError && rank.has(a.onError.channel)) {
        const back = rank.get(a.onError.channel)! <= rank.get(c.name)!;
        const label = ['on error', optionsLabel(a.onError)].filter(Boolean).join(' · ');
        edge(`action-${a.name}`, `channel-${a.onError.channel}`, 'error', label, back);
      }
    }
  }

  const byId = new Map(nodes.map((n) => [n.id, n]));
  placeVertically(nodes, edges, byId);
  routeEdges(nodes, edges, byId);

  const width = Math.max(...nodes.map((n) => n.x + n.w)) + MARGIN;
  const height = Math.max(...nodes.map((n) => n.y + n.h), ...edges.filter((e) => e.arc).map((e) => e.ly + 10)) + MARGIN;
  return { nodes, edges, width, height };
}

// placeVertically stacks each column's nodes near the average height of
// what feeds them, keeping siblings (an event's actions) centred on their
// parent.
function placeVertically(nodes: GNode[], edges: GEdge[], byId: Map<string, GNode>) {
  const preds = new Map<string, string[]>();
  for (const e of edges) if (!e.arc) preds.set(e.to, [...(preds.get(e.to) || []), e.from]);
  const placed = new Set<string>();
  const maxCol = Math.max(0, ...nodes.map((n) => n.col));
  for (let col = 0; col <= maxCol; col++) {
    const groups = new Map<string, { desired?: number; first: number; items: GNode[] }>();
    nodes.forEach((n, order) => {
      if (n.col !== col) return;
      const ps = (preds.get(n.id) || []).filter((p) => placed.has(p)).map((p) => byId.get(p)!);
      const key = ps.length ? ps.map((p) => p.id).join(',') : '#' + n.id;
      const g = groups.get(key) || { desired: ps.length ? ps.reduce((s, p) => s + p.y + p.h / 2, 0) / ps.length : undefined, first: order, items: [] };
      g.items.push(n);
      groups.set(key, g);
    });
    const sorted = [...groups.values()].sort((a, b) => (a.desired ?? Infinity) - (b.desired ?? Infinity) || a.first - b.first);
    let bottom = -Infinity;
    for (const g of sorted) {
      const height = g.items.reduce((s, n) => s + n.h, 0) + GAP_Y * (g.items.length - 1);
      let y = Math.max(g.desired !== undefined ? g.desired - height / 2 : bottom === -Infinity ? 0 : -Infinity, bottom + GAP_Y);
      for (const n of g.items) {
        n.y = y;
        y += n.h + GAP_Y;
        placed.add(n.id);
      }
      bottom = y - GAP_Y;
    }
  }
  // Columns are as wide as their widest node.
  const colW: number[] = [];
  for (const n of nodes) colW[n.col] = Math.max(colW[n.col] || 0, n.w);
  const colX: number[] = [];
  for (let c = 0, x = MARGIN; c <= maxCol; x += (colW[c] || 0) + GAP_X, c++) colX[c] = x;
  for (const n of nodes) n.x = colX[n.col] + (colW[n.col] - n.w) / 2;
}

// routeEdges draws forward edges as S-curves between columns and loops as
// arcs above or below the whole graph, each loop in its own lane.
function routeEdges(nodes: GNode[], edges: GEdge[], byId: Map<string, GNode>) {
  const top = Math.min(...nodes.map((n) => n.y));
  const bottom = Math.max(...nodes.map((n) => n.y + n.h));
  const middle = (top + bottom) / 2;
  const loops = edges.filter((e) => e.arc);
  const side = new Map<GEdge, 'above' | 'below'>();
  // An arc leaves its action and enters its channel vertically: it crosses
  // every node above (or below) them in their columns. Take the side with
  // fewer such crossings; on a tie, the side the two ends are nearer to.
  const crossed = (n: GNode, up: boolean) => nodes.filter((m) => m.col === n.col && (up ? m.y < n.y : m.y > n.y)).length;
  let above = 0;
  for (const e of loops) {
    const a = byId.get(e.from)!;
    const c = byId.get(e.to)!;
    const cost = crossed(a, true) + crossed(c, true) - crossed(a, false) - crossed(c, false);
    const s = cost < 0 || (cost === 0 && (a.y + a.h / 2 + c.y + c.h / 2) / 2 <= middle) ? 'above' : 'below';
    side.set(e, s);
    if (s === 'above') above++;
  }
  const shift = MARGIN - top + (above ? 18 + above * LANE : 0);
  for (const n of nodes) n.y += shift;
  const graphTop = top + shift;
  const graphBottom = bottom + shift;

  const lanes = { above: 0, below: 0 };
  for (const e of edges) {
    const a = byId.get(e.from)!;
    const b = byId.get(e.to)!;
    if (e.arc) {
      const s = side.get(e)!;
      const lane = ++lanes[s];
      const ax = a.x + a.w / 2;
      const cx = b.x + b.w / 2;
      const ay = s === 'above' ? a.y : a.y + a.h;
      const cy = s === 'above' ? b.y : b.y + b.h;
      const apex = s === 'above' ? graphTop - 10 - lane * LANE : graphBottom + 10 + lane * LANE;
      // A cubic's midpoint is (p0 + 3p1 + 3p2 + p3)/8: put the control
      // points where that midpoint lands on the lane.
      const ctl = (8 * apex - ay - cy) / 6;
      e.path = `M ${ax} ${ay} C ${ax} ${ctl}, ${cx} ${ctl}, ${cx} ${cy}`;
      e.lx = (ax + cx) / 2;
      e.ly = s === 'above' ? apex - 5 : apex + 14;
      if (e.kind === 'loop') e.label = ['↺ loop', e.label].filter(Boolean).join(' · ');
      continue;
    }
    const x1 = a.x + a.w;
    let y1 = a.y + a.h / 2;
    const x2 = b.x;
    let y2 = b.y + b.h / 2;
    // An onError edge leaves below the output's, and arrives below it
    // when both go to the same channel, so the two stay apart.
    if (e.kind === 'error') {
      y1 += ERR_OFFSET;
      if (edges.some((o) => o !== e && o.from === e.from && o.to === e.to)) y2 += ERR_OFFSET;
    }
    const dx = Math.max(30, (x2 - x1) / 2);
    e.path = `M ${x1} ${y1} C ${x1 + dx} ${y1}, ${x2 - dx} ${y2}, ${x2} ${y2}`;
    // The label sits in the gap before the target, where the curve runs
    // nearly level, so an edge spanning columns does not label a node.
    // onError labels go below their line, in the gap after the action
    // (several actions' errors often meet at one channel).
    const span = b.col - a.col > 1;
    if (e.kind === 'error') {
      const below = 14 + ((e.label || '').split(' · ').length - 1) * 12;
      e.lx = span ? x1 + GAP_X / 2 : (x1 + x2) / 2;
      e.ly = (span ? y1 : (y1 + y2) / 2) + below;
      continue;
    }
    e.lx = span ? x2 - GAP_X / 2 : (x1 + x2) / 2;
    e.ly = span ? y2 - 6 : (y1 + y2) / 2 - 6;
  }
}
