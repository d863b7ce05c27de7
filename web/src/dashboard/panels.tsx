// The panel frame (title, grid placement, loading, errors kept inside the
// panel) and the entry-based panel kinds: logs, stat, table and image;
// ranking, gallery and bars live in showcase.tsx, timeseries in
// timeseries.tsx, the kind switch in grid.tsx. A panel reads its entries
// and Files images through usePanelEntries and useFileSrc, which serve the
// console (the live DataHub, authenticated Files downloads) and a public
// page (the entries the public endpoint answered, signed URLs) alike.
import type { ComponentChildren } from 'preact';
import { useContext, useEffect, useMemo, useState } from 'preact/hooks';
import { blobURL, filesPath } from '../api';
import { ErrorBox, fmtTime } from '../ui';
import { DashContext, inWindow, useEntries, useSeries, type EntriesState, type Entry } from './data';
import { fmtNum, isObj, lookup, matchesWhere, num, rangeLabel, thresholdColor, whereOf, type Panel, type TimeRange } from './model';

export interface PanelProps {
  panel: Panel;
  index: number;
}

export function PanelFrame({
  panel,
  index,
  loading,
  error,
  children,
  tools,
}: PanelProps & { loading?: boolean; error?: unknown; children: ComponentChildren; tools?: ComponentChildren }) {
  const g = panel.grid;
  const place = { '--x': String(g.x + 1), '--y': String(g.y + 1), '--w': String(g.w), '--h': String(g.h) } as Record<string, string>;
  return (
    <section class="dash-panel" data-testid={`panel-${index}`} data-kind={panel.kind} data-loading={loading ? '1' : undefined} style={place} aria-label={panel.title}>
      <header class="dash-panel-head">
        <h3 title={panel.title}>{panel.title}</h3>
        {panel.time && (
          <span class="dash-override" title="this panel's own time range">
            {rangeLabel(panel.time)}
          </span>
        )}
        {loading && <span class="dash-spinner" aria-label="loading" />}
        {tools}
      </header>
      <div class="dash-body">{error ? <ErrorBox error={error} /> : children}</div>
    </section>
  );
}

export function Empty({ loading }: { loading: boolean }) {
  const ctx = useContext(DashContext);
  return <div class="dash-empty muted">{loading ? 'Loading…' : ctx.fixed ? 'Nothing to show yet' : 'No data in this time range'}</div>;
}

export interface PanelData extends EntriesState {
  range: TimeRange;
  files?: Record<string, string>; // a public page's signed URLs by Files path
}

/**
 * usePanelEntries is a panel's entries (newest first): in the console those
 * of its resource inside its (sliding) range that meet its where with the
 * page's parameters, kept up to date by pushes; on a public page the ones
 * the server selected.
 */
export function usePanelEntries(panel: Panel, index: number): PanelData {
  const ctx = useContext(DashContext);
  const range = panel.time ?? ctx.range;
  const st = useEntries(ctx.hub, panel.resource, range);
  const conds = whereOf(panel, ctx.params);
  const condKey = JSON.stringify(conds);
  const entries = useMemo(() => {
    const win = inWindow(st.entries, range, ctx.now);
    return conds.length ? win.filter((e) => matchesWhere(e.content, conds)) : win;
  }, [st.entries, range.from, range.to, ctx.now, condKey]);
  if (ctx.fixed) {
    const p = ctx.fixed.panels[index];
    return { entries: p?.entries ?? [], loading: ctx.fixed.loading, error: ctx.fixed.error, range, files: p?.files ?? {} };
  }
  return { ...st, entries, range };
}

export function text(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

export function LogsPanel({ panel, index }: PanelProps) {
  const st = usePanelEntries(panel, index);
  const f = panel.field || '';
  // Objects without the field belong to other panels; other content is shown whole.
  const rows = st.entries.flatMap((e) => {
    if (!isObj(e.content)) return [{ time: e.time, text: text(e.content) }];
    const v = lookup(e.content, f);
    return v == null ? [] : [{ time: e.time, text: text(v) }];
  });
  return (
    <PanelFrame panel={panel} index={index} loading={st.loading} error={st.error}>
      {rows.length === 0 ? (
        <Empty loading={st.loading} />
      ) : (
        <ul class="dash-logs">
          {rows.map((r) => (
            <li key={r.time}>
              <time>{fmtTime(r.time)}</time>
              <span>{r.text}</span>
            </li>
          ))}
        </ul>
      )}
    </PanelFrame>
  );
}

function Sparkline({ values, color }: { values: number[]; color: string }) {
  if (values.length < 2) return null;
  const lo = Math.min(...values);
  const span = Math.max(...values) - lo || 1;
  const pts = values.map((v, i) => `${(i / (values.length - 1)) * 100},${30 - ((v - lo) / span) * 28 - 1}`).join(' ');
  return (
    <svg class="dash-spark" viewBox="0 0 100 30" preserveAspectRatio="none" aria-hidden="true">
      <polyline points={pts} fill="none" stroke={color} stroke-width="1.5" vector-effect="non-scaling-stroke" />
    </svg>
  );
}

export function StatPanel({ panel, index }: PanelProps) {
  const ctx = useContext(DashContext);
  const key = panel.keys?.[0] || '';
  const agg = panel.aggregate || 'last';
  const st = usePanelEntries(panel, index);
  // Aggregates other than last cover the whole range: one bucket of the
  // series. The series cannot apply a where, and a public page has only
  // its entries: those aggregate the entries they have.
  const local = !!ctx.fixed || whereOf(panel, ctx.params).length > 0;
  const series = useSeries(ctx.hub, panel.resource, [key], st.range, agg === 'last' || local ? 0 : 1, ctx.gen);
  const points = st.entries.flatMap((e) => {
    const v = num(lookup(e.content, key));
    return v === null ? [] : [{ time: e.time, v }];
  });
  let value: number | null = null;
  let at: number | undefined;
  let loading = st.loading;
  let error = st.error;
  if (agg === 'last') {
    value = points[0]?.v ?? null;
    at = points[0]?.time;
  } else if (local) {
    const vs = points.map((p) => p.v);
    if (agg === 'count') value = vs.length;
    else if (vs.length) value = agg === 'min' ? Math.min(...vs) : agg === 'max' ? Math.max(...vs) : vs.reduce((a, b) => a + b, 0) / vs.length;
  } else {
    const b = series.data?.series[0]?.buckets[0];
    value = b ? (b as any)[agg] : null;
    loading = series.loading;
    error = series.error;
  }
  const color = value === null ? undefined : thresholdColor(panel.thresholds, value);
  const unit = panel.unit || '';
  return (
    <PanelFrame panel={panel} index={index} loading={loading} error={error}>
      <div class="dash-stat" style={color ? { color } : undefined}>
        <div class="dash-stat-main">
          <span class="dash-stat-value" data-testid="stat-value" data-value={value ?? ''}>
            {value === null ? (loading ? '…' : '–') : fmtNum(value, panel.decimals)}
          </span>
          {value !== null && unit && <span class={'dash-stat-unit' + (unit.length <= 2 ? ' tight' : '')}>{unit}</span>}
        </div>
        {at !== undefined && <div class="dash-stat-time muted">{fmtTime(at)}</div>}
        <Sparkline values={points.map((p) => p.v).reverse()} color={color || 'var(--accent)'} />
      </div>
    </PanelFrame>
  );
}

function cell(v: unknown, panel: Panel): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') return fmtNum(v, panel.decimals) + (panel.unit ? ' ' + panel.unit : '');
  return text(v);
}

export function TablePanel({ panel, index }: PanelProps) {
  const st = usePanelEntries(panel, index);
  const rows = st.entries.map((e) => ({ time: e.time, c: (isObj(e.content) ? e.content : { content: e.content }) as Record<string, unknown> }));
  let cols = panel.columns;
  if (!cols) {
    const seen = new Set<string>();
    rows.forEach((r) => Object.keys(r.c).forEach((k) => seen.add(k)));
    cols = [...seen];
  }
  const numeric = new Set(cols.filter((c) => rows.some((r) => typeof lookup(r.c, c) === 'number')));
  return (
    <PanelFrame panel={panel} index={index} loading={st.loading} error={st.error}>
      {rows.length === 0 ? (
        <Empty loading={st.loading} />
      ) : (
        <table class="dash-table">
          <thead>
            <tr>
              <th>time</th>
              {cols.map((c) => (
                <th key={c} class={numeric.has(c) ? 'num' : ''}>
                  {c}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.time}>
                <td class="muted">{fmtTime(r.time)}</td>
                {cols!.map((c) => (
                  <td key={c} class={numeric.has(c) ? 'num' : ''}>
                    {cell(lookup(r.c, c), panel)}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </PanelFrame>
  );
}

/** imageRef is where an entry's image is: a Files path or a URL. */
function imageRef(panel: Panel, e: Entry): { files?: string; url?: string; label: string } | null {
  const raw = lookup(e.content, panel.field || '');
  if (raw === undefined || raw === null || raw === '') return null;
  if (panel.mode === 'files') return { files: String(raw), label: String(raw) };
  if (panel.mode === 'url') return { url: String(raw), label: String(raw) };
  // mapping: the value as written, or rounded when it is a number.
  const n = num(raw);
  const m = panel.mapping?.find((x) => x.value === String(raw)) || (n === null ? undefined : panel.mapping?.find((x) => x.value === String(Math.round(n))));
  if (!m) return { label: `no image for ${text(raw)}` };
  return m.image.startsWith('/') ? { files: m.image, label: `${text(raw)} → ${m.image}` } : { url: m.image, label: `${text(raw)} → ${m.image}` };
}

/** signedURL finds a Files path in a public page's signed URLs ("a/b.jpg" and "/a/b.jpg" alike). */
function signedURL(files: Record<string, string>, path: string): string | undefined {
  return files[path] ?? files['/' + path.replace(/^\/+/, '')];
}

export interface ImageSrc {
  src?: string;
  shown?: string;
  error?: unknown;
}

/**
 * useFileSrc loads a Files image: in the console through the authenticated
 * API (an object URL, cached per path), on a public page (files given) from
 * its signed URL. While the next image loads the previous one stays, so a
 * push does not blank the panel; shown says which path the src is.
 */
export function useFileSrc(path: string | undefined, files?: Record<string, string>): ImageSrc {
  const [st, setSt] = useState<ImageSrc>({});
  const viaApi = !files;
  useEffect(() => {
    if (!path || !viaApi) return;
    let gone = false;
    blobURL(filesPath(path)).then(
      (src) => !gone && setSt({ src, shown: path }),
      (error) => !gone && setSt({ error, shown: path }),
    );
    return () => {
      gone = true;
    };
  }, [path, viaApi]);
  if (!path) return {};
  if (files) {
    const src = signedURL(files, path);
    return src ? { src, shown: path } : { error: new Error(`${path} is not available`), shown: path };
  }
  return st.shown === path || !st.error ? st : {};
}

/** useImageSrc loads an image reference: Files as useFileSrc does, URLs as they are. */
function useImageSrc(ref: { files?: string; url?: string } | null, files?: Record<string, string>): ImageSrc {
  const f = useFileSrc(ref?.files, files);
  if (ref?.url) return { src: ref.url, shown: ref.url };
  return f;
}

/** FileImg is a Files image (a thumbnail or a card's picture), or a placeholder. */
export function FileImg({ path, files, alt, class: cls }: { path?: string; files?: Record<string, string>; alt: string; class?: string }) {
  const img = useFileSrc(path || undefined, files);
  const [broken, setBroken] = useState<string | null>(null);
  if (path && img.src && broken !== img.src)
    return <img class={cls} src={img.src} alt={alt} data-testid="file-img" data-path={path} onError={() => setBroken(img.src!)} />;
  return (
    <span class={(cls || '') + ' dash-noimg'} title={img.error ? String((img.error as Error).message || img.error) : path ? 'loading' : 'no image'} aria-hidden="true">
      {path && !img.error && broken !== img.src ? '…' : ''}
    </span>
  );
}

export function ImagePanel({ panel, index }: PanelProps) {
  const st = usePanelEntries(panel, index);
  const items = st.entries.filter((e) => imageRef(panel, e));
  // The entry shown, by time; null follows the newest as entries arrive.
  const [sel, setSel] = useState<number | null>(null);
  const i = sel === null ? 0 : Math.max(0, items.findIndex((e) => e.time === sel));
  const cur = items[i];
  const ref = cur ? imageRef(panel, cur) : null;
  const img = useImageSrc(ref, st.files);
  const [broken, setBroken] = useState<string | null>(null);
  const go = (j: number) => setSel(j <= 0 ? null : items[j].time);
  const tools = items.length > 1 && (
    <span class="dash-steps">
      <button class="icon" aria-label="Older image" title="Older" disabled={i >= items.length - 1} onClick={() => go(i + 1)}>
        ‹
      </button>
      <span class="muted" data-testid="image-position">
        {i + 1}/{items.length}
      </span>
      <button class="icon" aria-label="Newer image" title="Newer" disabled={i === 0} onClick={() => go(i - 1)}>
        ›
      </button>
      {i > 0 && (
        <button class="link" onClick={() => go(0)}>
          latest
        </button>
      )}
    </span>
  );
  return (
    <PanelFrame panel={panel} index={index} loading={st.loading} error={st.error} tools={tools}>
      {!cur || !ref ? (
        <Empty loading={st.loading} />
      ) : (
        <figure class="dash-image">
          {!ref.files && !ref.url ? (
            <div class="dash-empty muted">{ref.label}</div>
          ) : img.error ? (
            <ErrorBox error={img.error} />
          ) : img.src && broken !== img.src ? (
            <img
              src={img.src}
              alt={ref.label}
              data-testid="image"
              data-path={img.shown}
              onError={() => setBroken(img.src!)}
            />
          ) : img.src ? (
            <div class="error">The image could not be loaded{ref.url ? ' (an export URL may have expired)' : ''}.</div>
          ) : (
            <div class="dash-empty muted">Loading…</div>
          )}
          <figcaption>
            <time>{fmtTime(cur.time)}</time> <span class="muted">{ref.label}</span>
          </figcaption>
        </figure>
      )}
    </PanelFrame>
  );
}
