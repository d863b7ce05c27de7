// The dashboard model as GET /v1/dashboards/{name} returns it
// (internal/dashboard/model.go), and the time arithmetic the console needs
// to read it: relative ranges ("now-6h"), refresh intervals, number
// formatting and threshold colours.

export interface TimeRange {
  from: string;
  to: string;
}

export interface Resource {
  type: string;
  id: string;
}

export interface Threshold {
  value: number;
  color: string;
}

export interface Panel {
  title: string;
  kind: 'logs' | 'stat' | 'timeseries' | 'image' | 'table' | 'ranking' | 'gallery' | 'bars';
  resource: Resource;
  time?: TimeRange;
  keys?: string[];
  aggregate?: string;
  thresholds?: Threshold[];
  unit?: string;
  decimals?: number;
  mode?: 'url' | 'files' | 'mapping';
  field?: string;
  mapping?: { value: string; image: string }[];
  columns?: string[];
  // ranking and gallery: the key to group by (ranking), the label and
  // Files image keys, desc (default) or asc, how many rows or cards.
  group?: string;
  label?: string;
  image?: string;
  order?: 'asc' | 'desc';
  limit?: number;
  // where keeps the entries whose content has these values: literal text
  // or one ${param} of the dashboard's params (see whereOf).
  where?: Record<string, string>;
  grid: { x: number; y: number; w: number; h: number };
}

export interface Dashboard {
  name: string;
  title: string;
  time: TimeRange;
  refresh?: string;
  // URL parameters the dashboard takes: name → required.
  params?: Record<string, boolean>;
  // Public dashboards are also served without login at /p/<operatorId>/<name>.
  public?: boolean;
  panels: Panel[];
  version: number;
  createdTime: number;
  updatedTime: number;
}

const REL = /^now(?:-(\d+)([smhd]))?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * parseTime resolves one end of a range as the server does: now,
 * now-<n>(s|m|h|d), UNIX ms or RFC 3339. Null when it is none of those.
 */
export function parseTime(s: string, now: number): number | null {
  const m = REL.exec(s);
  if (m) return m[1] ? now - Number(m[1]) * UNIT_MS[m[2]] : now;
  if (/^\d{1,15}$/.test(s)) return Number(s);
  if (/^\d{4}-\d\d-\d\dT/.test(s)) {
    const t = Date.parse(s);
    return Number.isNaN(t) ? null : t;
  }
  return null;
}

export function isRelative(r: TimeRange): boolean {
  return REL.test(r.from) || REL.test(r.to);
}

/** resolveRange gives the range's instants now, or null if it is invalid or empty. */
export function resolveRange(r: TimeRange, now: number): { from: number; to: number } | null {
  const from = parseTime(r.from, now);
  const to = parseTime(r.to, now);
  return from === null || to === null || from >= to ? null : { from, to };
}

/** parseDuration reads a Go duration ("1m", "1m30s", "500ms"); null if it is not one. */
export function parseDuration(s: string | undefined): number | null {
  if (!s) return null;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/y;
  let total = 0;
  let end = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) {
    total += Number(m[1]) * UNIT_MS[m[2]];
    end = re.lastIndex;
  }
  return end === s.length && total > 0 ? total : null;
}

export const presets: { from: string; label: string }[] = [
  { from: 'now-5m', label: 'Last 5 minutes' },
  { from: 'now-6m', label: 'Last 6 minutes' },
  { from: 'now-15m', label: 'Last 15 minutes' },
  { from: 'now-1h', label: 'Last 1 hour' },
  { from: 'now-6h', label: 'Last 6 hours' },
  { from: 'now-24h', label: 'Last 24 hours' },
  { from: 'now-7d', label: 'Last 7 days' },
];

function fmtEnd(s: string): string {
  if (/^\d{1,15}$/.test(s)) {
    const d = new Date(Number(s));
    const p = (n: number) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  }
  return s;
}

/** rangeLabel names a range for the picker ("Last 6 hours", "now-2h to now-1h"). */
export function rangeLabel(r: TimeRange): string {
  const p = r.to === 'now' && presets.find((x) => x.from === r.from);
  if (p) return p.label;
  const m = r.to === 'now' && REL.exec(r.from);
  if (m && m[1]) return `Last ${m[1]}${m[2]}`;
  return `${fmtEnd(r.from)} to ${fmtEnd(r.to)}`;
}

/** fmtNum formats a value with a panel's decimals (else at most 2). */
export function fmtNum(v: number, decimals?: number): string {
  if (decimals !== undefined && decimals !== null) return v.toFixed(decimals);
  return String(Math.round(v * 100) / 100);
}

/** num reads a content value as a number (numbers, numeric strings, booleans). */
export function num(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

// Threshold names as Grafana/Lagoon users write them, in the console's palette.
const palette: Record<string, string> = {
  green: '#1f9d55',
  'dark-green': '#17693a',
  orange: '#e08a00',
  'dark-orange': '#b35c00',
  red: '#d43c3c',
  'dark-red': '#a32020',
  yellow: '#d9b300',
  blue: '#1b6ef3',
  purple: '#8e44ad',
};

export function colorOf(name: string): string {
  return palette[name] || name.replace(/-/g, '');
}

/** thresholdColor is the colour of the highest threshold at or below v. */
export function thresholdColor(ts: Threshold[] | undefined, v: number): string | undefined {
  let c: string | undefined;
  for (const t of ts || []) if (t.value <= v) c = colorOf(t.color);
  return c;
}

/** seriesColors are the line colours of a timeseries panel, in key order. */
export const seriesColors = ['#1b6ef3', '#e08a00', '#1f9d55', '#d43c3c', '#8e44ad', '#00a3a3', '#c2185b', '#6d4c41'];

/** isObj tells a JSON object (an entry's content as panels read it). */
export const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * lookup reads a key of an entry's content as the server does
 * (internal/dashboard/public.go): the key as it is, else a dotted path
 * (emotions.HAPPY). Undefined when the content has no such key.
 */
export function lookup(content: unknown, key: string): unknown {
  if (!isObj(content)) return undefined;
  if (key in content) return content[key];
  const dot = key.indexOf('.');
  if (dot < 0) return undefined;
  return lookup(content[key.slice(0, dot)], key.slice(dot + 1));
}

/** whereText is a content value as a where value is compared with it. */
export function whereText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

const PARAM_REF = /^\$\{([^}]*)\}$/;

/**
 * whereOf resolves a panel's where with the page's parameters: ${p}
 * takes parameter p; a condition on a parameter left out is dropped.
 */
export function whereOf(panel: Panel, params: Record<string, string>): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(panel.where || {})) {
    const m = PARAM_REF.exec(v);
    if (!m) out.push([k, v]);
    else if (params[m[1]] !== undefined && params[m[1]] !== '') out.push([k, params[m[1]]]);
  }
  return out;
}

/** matchesWhere tells whether an entry's content meets every condition. */
export function matchesWhere(content: unknown, conds: [string, string][]): boolean {
  return conds.every(([k, v]) => {
    const got = lookup(content, k);
    return got !== undefined && whereText(got) === v;
  });
}

/** pageParams reads a dashboard's declared params from a query, in the query's order (empty values left out). */
export function pageParams(d: { params?: Record<string, boolean> }, q: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  q.forEach((v, k) => {
    if (v && d.params && k in d.params && !(k in out)) out[k] = v;
  });
  return out;
}

/** missingParams lists the required params a page was opened without. */
export function missingParams(d: { params?: Record<string, boolean> }, params: Record<string, string>): string[] {
  return Object.entries(d.params || {})
    .filter(([p, required]) => required && !params[p])
    .map(([p]) => p)
    .sort();
}

/** needsText is the message of a page opened without its required params. */
export function needsText(missing: string[]): string {
  return `This page needs ${missing.map((p, i) => (i ? '&' : '?') + p + '=…').join('')}`;
}
