// The panels' data layer. A dashboard view owns one DataHub: it reads the
// entries of each resource + time range once for every panel showing them,
// holds one live subscription per resource (WebSocket pushes, no polling)
// and feeds each pushed entry to the panels; the series query of
// timeseries (and aggregated stat) panels is fetched per panel. A public
// page (public.tsx) has no hub: its panels read the entries the public
// endpoint answered with (DashContextValue.fixed).
import { createContext } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { live, type DataEntry } from '../live';
import { decodeContent } from '../ui';
import { parseTime, resolveRange, type Resource, type TimeRange } from './model';

/** Entry is a Harvest Data entry with its content decoded (JSON → value). */
export interface Entry {
  time: number;
  content: any;
}

/**
 * ENTRY_LIMIT is how many entries (newest first) are read per resource and
 * range: the API's maximum, so a ranking sees up to 1,000 results.
 */
export const ENTRY_LIMIT = 1000;

export interface EntriesState {
  entries: Entry[]; // newest first
  loading: boolean;
  error: unknown;
}

export function dataPath(r: Resource): string {
  return `/v1/data/${encodeURIComponent(r.type)}/${encodeURIComponent(r.id)}`;
}

const toEntry = (e: DataEntry): Entry => ({ time: e.time, content: decodeContent(e) });

// An open end ("now") stays open in queries, so an entry stamped by a
// device clock slightly ahead of this one is still shown.
function queryRange(r: TimeRange, now: number): { from?: number; to?: number } {
  return { from: parseTime(r.from, now) ?? undefined, to: r.to === 'now' ? undefined : (parseTime(r.to, now) ?? undefined) };
}

/** inWindow keeps the entries inside a range at now (relative ranges slide). */
export function inWindow(entries: Entry[], r: TimeRange, now: number): Entry[] {
  const from = parseTime(r.from, now) ?? -Infinity;
  const to = r.to === 'now' ? Infinity : (parseTime(r.to, now) ?? Infinity);
  return entries.filter((e) => e.time >= from && e.time <= to);
}

/** EntrySet is the entries of one resource in one range, shared by panels. */
class EntrySet {
  state: EntriesState = { entries: [], loading: true, error: null };
  refs = 0;
  private listeners = new Set<() => void>();
  private ac: AbortController | null = null;

  constructor(
    readonly res: Resource,
    readonly range: TimeRange,
  ) {}

  onChange(f: () => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  private set(s: EntriesState) {
    this.state = s;
    this.listeners.forEach((f) => f());
  }

  load() {
    this.ac?.abort();
    const ac = (this.ac = new AbortController());
    this.set({ ...this.state, loading: true });
    const q = queryRange(this.range, Date.now());
    api<DataEntry[]>('GET', dataPath(this.res), { query: { ...q, sort: 'desc', limit: ENTRY_LIMIT }, signal: ac.signal }).then(
      (list) => {
        if (ac.signal.aborted) return;
        const got = list.map(toEntry);
        // Entries pushed while the request ran may be newer than its answer.
        const newest = got.length ? got[0].time : -Infinity;
        const pushed = this.state.entries.filter((e) => e.time > newest);
        this.set({ entries: [...pushed, ...got], loading: false, error: null });
      },
      (error) => !ac.signal.aborted && this.set({ ...this.state, loading: false, error }),
    );
  }

  push(e: Entry) {
    const now = Date.now();
    const { from = -Infinity, to = Infinity } = queryRange(this.range, now);
    if (e.time < from || e.time > to) return;
    // Harvest keys entries by time: a write at the same time replaces the entry.
    const list = this.state.entries.filter((x) => x.time !== e.time);
    let i = 0;
    while (i < list.length && list[i].time > e.time) i++;
    list.splice(i, 0, e);
    if (list.length > ENTRY_LIMIT) list.length = ENTRY_LIMIT;
    this.set({ ...this.state, entries: list });
  }

  dispose() {
    this.ac?.abort();
    this.listeners.clear();
  }
}

/** LiveState is the state of a dashboard's live subscriptions. */
export type LiveState = 'idle' | 'connecting' | 'live' | 'error';

// null tells a listener that pushes may have been missed (a reconnect):
// read again.
type EntryListener = (e: Entry | null) => void;

/** Feed is the live subscription of one resource. */
interface Feed {
  listeners: Set<EntryListener>;
  unsubscribe: () => void;
  acks: number;
  error: string;
}

const resKey = (r: Resource) => `${r.type}/${r.id}`;

export class DataHub {
  private sets = new Map<string, EntrySet>();
  private feeds = new Map<string, Feed>();
  private stateListeners = new Set<() => void>();

  /** entries returns the shared set of a resource + range, and its release. */
  entries(res: Resource, range: TimeRange): [EntrySet, () => void] {
    const k = `${resKey(res)}|${range.from}|${range.to}`;
    let s = this.sets.get(k);
    if (!s) {
      s = new EntrySet(res, range);
      this.sets.set(k, s);
      s.load();
    }
    const set = s;
    set.refs++;
    const off = this.listen(res, (e) => (e ? set.push(e) : set.load()));
    return [
      set,
      () => {
        off();
        if (--set.refs === 0) {
          set.dispose();
          this.sets.delete(k);
        }
      },
    ];
  }

  /** listen calls f with each entry pushed for res; one subscription per resource. */
  listen(res: Resource, f: EntryListener): () => void {
    const k = resKey(res);
    let feed = this.feeds.get(k);
    if (!feed) {
      const fd: Feed = { listeners: new Set(), acks: 0, error: '', unsubscribe: () => {} };
      // live.subscribe rather than subscribeData: the acknowledgement and
      // a refusal (no permission) are shown too, not only the entries.
      fd.unsubscribe = live.subscribe({ topic: 'data', resourceType: res.type, resourceId: res.id }, (m) => {
        if (m.type === 'subscribed') {
          // A second acknowledgement follows a reconnect: read again.
          if (fd.acks++ > 0) fd.listeners.forEach((l) => l(null));
          fd.error = '';
          this.changed();
        } else if (m.type === 'error') {
          fd.error = `${m.code}: ${m.message}`;
          this.changed();
        } else if (m.entry) {
          const e = toEntry(m.entry as DataEntry);
          fd.listeners.forEach((l) => l(e));
        }
      });
      this.feeds.set(k, fd);
      feed = fd;
      this.changed();
    }
    const fd = feed;
    fd.listeners.add(f);
    return () => {
      fd.listeners.delete(f);
      if (fd.listeners.size === 0) {
        fd.unsubscribe();
        this.feeds.delete(k);
        this.changed();
      }
    };
  }

  /** reloadAll reads every entry set again (refresh). */
  reloadAll() {
    this.sets.forEach((s) => s.load());
  }

  /** liveState sums up the subscriptions: live once every one is acknowledged. */
  liveState(): { state: LiveState; error: string } {
    const feeds = [...this.feeds.values()];
    const bad = feeds.find((f) => f.error);
    if (bad) return { state: 'error', error: bad.error };
    if (feeds.length === 0) return { state: 'idle', error: '' };
    return { state: feeds.every((f) => f.acks > 0) ? 'live' : 'connecting', error: '' };
  }

  onLiveState(f: () => void): () => void {
    this.stateListeners.add(f);
    return () => this.stateListeners.delete(f);
  }

  private changed() {
    this.stateListeners.forEach((f) => f());
  }

  dispose() {
    this.feeds.forEach((f) => f.unsubscribe());
    this.feeds.clear();
    this.sets.forEach((s) => s.dispose());
    this.sets.clear();
  }
}

/** FixedPanel is a public page panel's data: its entries and signed Files URLs. */
export interface FixedPanel {
  entries: Entry[]; // newest first, already filtered by the server
  files: Record<string, string>; // Files path → signed URL
}

/** DashContext is what every panel of a dashboard view reads. */
export interface DashContextValue {
  hub: DataHub | null; // null on a public page
  now: number; // the view's clock: relative ranges are resolved against it
  gen: number; // bumped by each refresh
  range: TimeRange; // the dashboard's range (a panel's own time wins)
  params: Record<string, string>; // the page's URL parameters (panels' where)
  // A public page's data by panel index, instead of the hub.
  fixed?: { panels: FixedPanel[]; loading: boolean; error: unknown };
}

export const DashContext = createContext<DashContextValue>(null as unknown as DashContextValue);

const loading: EntriesState = { entries: [], loading: true, error: null };

/** useEntries is the shared entries of a resource + range, kept up to date by pushes (no hub: none). */
export function useEntries(hub: DataHub | null, res: Resource, range: TimeRange): EntriesState {
  const [st, setSt] = useState<EntriesState>(loading);
  useEffect(() => {
    if (!hub) return;
    const [set, release] = hub.entries(res, range);
    setSt(set.state);
    const off = set.onChange(() => setSt(set.state));
    return () => {
      off();
      release();
    };
  }, [hub, res.type, res.id, range.from, range.to]);
  return st;
}

export interface Bucket {
  time: number;
  avg: number;
  min: number;
  max: number;
  count: number;
}

/** SeriesResult is GET /v1/data/{type}/{id}/series (internal/harvest/series.go). */
export interface SeriesResult {
  from: number;
  to: number;
  bucketMs: number;
  series: { key: string; buckets: Bucket[] }[];
}

export interface SeriesState {
  data?: SeriesResult;
  loading: boolean;
  error: unknown;
}

/**
 * useSeries reads aggregated buckets of keys over a range (buckets ≤ 0:
 * not yet, e.g. before the panel is measured), again on each refresh and,
 * once per burst, after pushes of the resource.
 */
export function useSeries(hub: DataHub | null, res: Resource, keys: string[], range: TimeRange, buckets: number, gen: number): SeriesState {
  const [st, setSt] = useState<SeriesState>({ loading: true, error: null });
  const keyList = keys.join(',');
  useEffect(() => {
    if (buckets <= 0 || !hub) return;
    let ac: AbortController | null = null;
    let timer: number | undefined;
    const load = () => {
      ac?.abort();
      const my = (ac = new AbortController());
      const now = Date.now();
      if (!resolveRange(range, now)) {
        setSt({ loading: false, error: new Error(`the time range ${range.from} to ${range.to} is empty or invalid`) });
        return;
      }
      setSt((s) => ({ ...s, loading: true }));
      api<SeriesResult>('GET', dataPath(res) + '/series', { query: { keys: keyList, ...queryRange(range, now), buckets }, signal: my.signal }).then(
        (data) => !my.signal.aborted && setSt({ data, loading: false, error: null }),
        (error) => !my.signal.aborted && setSt((s) => ({ ...s, loading: false, error })),
      );
    };
    load();
    const off = hub.listen(res, () => {
      clearTimeout(timer);
      timer = window.setTimeout(load, 400);
    });
    return () => {
      off();
      clearTimeout(timer);
      ac?.abort();
    };
  }, [hub, res.type, res.id, keyList, range.from, range.to, buckets, gen]);
  return st;
}
