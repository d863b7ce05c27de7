// The panels that present results rather than measurements: ranking (a
// leaderboard for a projector), gallery (the newest entries as cards) and
// bars (one entry's numbers as horizontal bars). They read entries like
// the other panels (usePanelEntries), so the console updates them by push
// and a public page draws them from its answer.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { fmtTime } from '../ui';
import type { Entry } from './data';
import { fmtNum, isObj, lookup, num, whereText, type Panel } from './model';
import { Empty, FileImg, PanelFrame, text, usePanelEntries, type PanelProps } from './panels';

const FRESH_MS = 6000;

/**
 * useFresh returns the times of entries that arrived after the panel first
 * showed its data (a push, or a public page's refetch), for FRESH_MS.
 */
function useFresh(entries: Entry[], loading: boolean): Set<number> {
  const known = useRef<Set<number> | null>(null);
  const timers = useRef<number[]>([]);
  const [fresh, setFresh] = useState<Set<number>>(() => new Set());
  useEffect(() => {
    if (known.current === null) {
      if (!loading) known.current = new Set(entries.map((e) => e.time));
      return;
    }
    const seen = known.current;
    const added = entries.filter((e) => !seen.has(e.time)).map((e) => e.time);
    if (!added.length) return;
    added.forEach((t) => seen.add(t));
    setFresh((f) => new Set([...f, ...added]));
    timers.current.push(
      window.setTimeout(
        () =>
          setFresh((f) => {
            const n = new Set(f);
            added.forEach((t) => n.delete(t));
            return n;
          }),
        FRESH_MS,
      ),
    );
  }, [entries, loading]);
  useEffect(() => () => timers.current.forEach(clearTimeout), []);
  return fresh;
}

const unitOf = (panel: Panel) => (panel.unit ? ' ' + panel.unit : '');
const filePath = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);

export interface RankRow {
  key: string; // the group's value, or the entry's time without a group
  rank: number; // 1-based; equal values share a rank (1, 2, 2, 4)
  value: number;
  label: string;
  image?: string;
  entry: Entry;
}

/**
 * rankRows ranks entries by the number at field: with group, one row per
 * distinct group value holding that group's best entry (the newest of
 * equals); sorted best first (order desc, the default: highest), equal
 * values by who got there first; the first limit (default 10).
 */
export function rankRows(panel: Panel, entries: Entry[]): RankRow[] {
  const desc = panel.order !== 'asc';
  const field = panel.field || '';
  const items: { key: string; v: number; e: Entry }[] = [];
  const best = new Map<string, { key: string; v: number; e: Entry }>();
  for (const e of entries) {
    const v = num(lookup(e.content, field));
    if (v === null) continue;
    if (!panel.group) {
      items.push({ key: String(e.time), v, e });
      continue;
    }
    const g = lookup(e.content, panel.group);
    if (g === undefined || g === null || g === '') continue;
    const key = whereText(g);
    const cur = best.get(key);
    if (!cur || (desc ? v > cur.v : v < cur.v)) best.set(key, { key, v, e });
  }
  const all = panel.group ? [...best.values()] : items;
  all.sort((a, b) => (desc ? b.v - a.v : a.v - b.v) || a.e.time - b.e.time);
  const top = all.slice(0, panel.limit || 10);
  const rows: RankRow[] = [];
  top.forEach((x, i) => {
    const label = panel.label ? lookup(x.e.content, panel.label) : undefined;
    rows.push({
      key: x.key,
      rank: i > 0 && x.v === top[i - 1].v ? rows[i - 1].rank : i + 1,
      value: x.v,
      label: label !== undefined && label !== null && label !== '' ? text(label) : panel.group ? x.key : fmtTime(x.e.time),
      image: panel.image ? filePath(lookup(x.e.content, panel.image)) : undefined,
      entry: x.e,
    });
  });
  return rows;
}

/**
 * RankingPanel is a leaderboard. Each row carries data-rank, data-label
 * and data-value (the raw number, before unit and decimals); a row whose
 * entry just arrived has the class fresh (and data-fresh) for a few seconds.
 */
export function RankingPanel({ panel, index }: PanelProps) {
  const st = usePanelEntries(panel, index);
  const rows = useMemo(() => rankRows(panel, st.entries), [panel, st.entries]);
  const fresh = useFresh(st.entries, st.loading);
  return (
    <PanelFrame panel={panel} index={index} loading={st.loading} error={st.error}>
      {rows.length === 0 ? (
        <Empty loading={st.loading} />
      ) : (
        <ol class={'dash-rank' + (panel.image ? ' with-img' : '')} data-testid="ranking">
          {rows.map((r) => {
            const isNew = fresh.has(r.entry.time);
            return (
              <li
                key={r.key}
                class={(r.rank <= 3 ? `top top${r.rank}` : '') + (isNew ? ' fresh' : '')}
                data-rank={r.rank}
                data-label={r.label}
                data-value={r.value}
                data-fresh={isNew ? '1' : undefined}
                title={fmtTime(r.entry.time)}
              >
                <span class="dash-rank-no" aria-label={`rank ${r.rank}`}>
                  {r.rank}
                </span>
                {panel.image && <FileImg class="dash-rank-img" path={r.image} files={st.files} alt={r.label} />}
                <span class="dash-rank-label">{r.label}</span>
                <span class="dash-rank-value">
                  {fmtNum(r.value, panel.decimals)}
                  {panel.unit && <small>{unitOf(panel)}</small>}
                </span>
              </li>
            );
          })}
        </ol>
      )}
    </PanelFrame>
  );
}

/** GalleryPanel shows the newest entries with an image as cards (data-time on each), newest first. */
export function GalleryPanel({ panel, index }: PanelProps) {
  const st = usePanelEntries(panel, index);
  const cards = useMemo(
    () => st.entries.filter((e) => filePath(lookup(e.content, panel.image || ''))).slice(0, panel.limit || 12),
    [st.entries, panel.image, panel.limit],
  );
  const fresh = useFresh(st.entries, st.loading);
  return (
    <PanelFrame panel={panel} index={index} loading={st.loading} error={st.error}>
      {cards.length === 0 ? (
        <Empty loading={st.loading} />
      ) : (
        <ul class="dash-gallery" data-testid="gallery">
          {cards.map((e) => {
            const label = panel.label ? lookup(e.content, panel.label) : undefined;
            const v = panel.field ? num(lookup(e.content, panel.field)) : null;
            const path = filePath(lookup(e.content, panel.image || ''));
            const shown = label !== undefined && label !== null && label !== '' ? text(label) : '';
            return (
              <li key={e.time} class={'dash-card' + (fresh.has(e.time) ? ' fresh' : '')} data-time={e.time} data-testid="gallery-card">
                <FileImg class="dash-card-img" path={path} files={st.files} alt={shown || path || ''} />
                <div class="dash-card-text">
                  {shown && <span class="dash-card-label">{shown}</span>}
                  {v !== null && (
                    <span class="dash-card-value" data-value={v}>
                      {fmtNum(v, panel.decimals)}
                      {unitOf(panel)}
                    </span>
                  )}
                  <time class="muted">{fmtTime(e.time)}</time>
                </div>
              </li>
            );
          })}
        </ul>
      )}
    </PanelFrame>
  );
}

/** barValues reads one entry's bars: the object at field, or the keys; null if it has none. */
export function barValues(panel: Panel, e: Entry): { name: string; v: number }[] | null {
  let items: { name: string; v: number | null }[];
  if (panel.field) {
    const o = lookup(e.content, panel.field);
    if (!isObj(o)) return null;
    items = Object.entries(o).map(([name, v]) => ({ name, v: num(v) }));
  } else {
    items = (panel.keys || []).map((name) => ({ name, v: num(lookup(e.content, name)) }));
  }
  const out = items.filter((x): x is { name: string; v: number } => x.v !== null);
  return out.length ? out.sort((a, b) => b.v - a.v) : null;
}

/** BarsPanel draws the newest entry's numbers as horizontal bars, largest first (data-name, data-value on each). */
export function BarsPanel({ panel, index }: PanelProps) {
  const st = usePanelEntries(panel, index);
  const found = useMemo(() => {
    for (const e of st.entries) {
      const bars = barValues(panel, e);
      if (bars) return { e, bars };
    }
    return null;
  }, [panel, st.entries]);
  const max = found ? Math.max(0, ...found.bars.map((b) => b.v)) : 0;
  return (
    <PanelFrame panel={panel} index={index} loading={st.loading} error={st.error}>
      {!found ? (
        <Empty loading={st.loading} />
      ) : (
        <div class="dash-bars" data-testid="bars" data-time={found.e.time}>
          {found.bars.map((b, i) => (
            <div key={b.name} class={'dash-bar' + (i === 0 ? ' first' : '')} data-testid="bar" data-name={b.name} data-value={b.v}>
              <span class="dash-bar-name" title={b.name}>
                {b.name}
              </span>
              <span class="dash-bar-track">
                <span class="dash-bar-fill" style={{ width: `${max > 0 ? (Math.max(0, b.v) / max) * 100 : 0}%` }} />
              </span>
              <span class="dash-bar-value">
                {fmtNum(b.v, panel.decimals)}
                {unitOf(panel)}
              </span>
            </div>
          ))}
          <time class="dash-bars-time muted">{fmtTime(found.e.time)}</time>
        </div>
      )}
    </PanelFrame>
  );
}
