// The panel frame (title, grid placement, loading, errors kept inside the
// panel) and the entry-based panel kinds: logs, stat, table and image.
// Timeseries lives in timeseries.tsx, the kind switch in view.tsx.
import type { ComponentChildren } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import { blobURL, filesPath } from '../api';
import { ErrorBox, fmtTime } from '../ui';
import { DashContext, inWindow, useEntries, useSeries, type Entry } from './data';
import { fmtNum, num, rangeLabel, thresholdColor, type Panel } from './model';

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

function Empty({ loading }: { loading: boolean }) {
  return <div class="dash-empty muted">{loading ? 'Loading…' : 'No data in this time range'}</div>;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** usePanelEntries is a panel's entries inside its (sliding) range. */
function usePanelEntries(panel: Panel) {
  const ctx = useContext(DashContext);
  const range = panel.time ?? ctx.range;
  const st = useEntries(ctx.hub, panel.resource, range);
  return { ...st, entries: inWindow(st.entries, range, ctx.now), range };
}

function text(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

export function LogsPanel({ panel, index }: PanelProps) {
  const st = usePanelEntries(panel);
  const f = panel.field || '';
  // Objects without the field belong to other panels; other content is shown whole.
  const rows = st.entries.flatMap((e) => (isObj(e.content) ? (e.content[f] == null ? [] : [{ time: e.time, text: text(e.content[f]) }]) : [{ time: e.time, text: text(e.content) }]));
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
  const st = usePanelEntries(panel);
  // Aggregates other than last cover the whole range: one bucket of the series.
  const series = useSeries(ctx.hub, panel.resource, [key], st.range, agg === 'last' ? 0 : 1, ctx.gen);
  const points = st.entries.flatMap((e) => {
    const v = isObj(e.content) ? num(e.content[key]) : null;
    return v === null ? [] : [{ time: e.time, v }];
  });
  let value: number | null = null;
  let at: number | undefined;
  let loading = st.loading;
  let error = st.error;
  if (agg === 'last') {
    value = points[0]?.v ?? null;
    at = points[0]?.time;
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
  const st = usePanelEntries(panel);
  const rows = st.entries.map((e) => ({ time: e.time, c: (isObj(e.content) ? e.content : { content: e.content }) as Record<string, unknown> }));
  let cols = panel.columns;
  if (!cols) {
    const seen = new Set<string>();
    rows.forEach((r) => Object.keys(r.c).forEach((k) => seen.add(k)));
    cols = [...seen];
  }
  const numeric = new Set(cols.filter((c) => rows.some((r) => typeof r.c[c] === 'number')));
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
                    {cell(r.c[c], panel)}
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
  const raw = isObj(e.content) ? e.content[panel.field || ''] : undefined;
  if (raw === undefined || raw === null || raw === '') return null;
  if (panel.mode === 'files') return { files: String(raw), label: String(raw) };
  if (panel.mode === 'url') return { url: String(raw), label: String(raw) };
  // mapping: the value as written, or rounded when it is a number.
  const n = num(raw);
  const m = panel.mapping?.find((x) => x.value === String(raw)) || (n === null ? undefined : panel.mapping?.find((x) => x.value === String(Math.round(n))));
  if (!m) return { label: `no image for ${text(raw)}` };
  return m.image.startsWith('/') ? { files: m.image, label: `${text(raw)} → ${m.image}` } : { url: m.image, label: `${text(raw)} → ${m.image}` };
}

/**
 * useImageSrc loads an image reference: Files through the authenticated
 * API (an object URL), URLs as they are. While the next Files image loads
 * the previous one stays, so a push does not blank the panel; shown says
 * which path or URL the src is.
 */
function useImageSrc(ref: { files?: string; url?: string } | null): { src?: string; shown?: string; error?: unknown } {
  const [st, setSt] = useState<{ src?: string; shown?: string; error?: unknown }>({});
  const files = ref?.files;
  useEffect(() => {
    if (!files) return;
    let gone = false;
    blobURL(filesPath(files)).then(
      (src) => !gone && setSt({ src, shown: files }),
      (error) => !gone && setSt({ error, shown: files }),
    );
    return () => {
      gone = true;
    };
  }, [files]);
  if (ref?.url) return { src: ref.url, shown: ref.url };
  if (!files) return {};
  return st.shown === files || !st.error ? st : {};
}

export function ImagePanel({ panel, index }: PanelProps) {
  const st = usePanelEntries(panel);
  const items = st.entries.filter((e) => imageRef(panel, e));
  // The entry shown, by time; null follows the newest as entries arrive.
  const [sel, setSel] = useState<number | null>(null);
  const i = sel === null ? 0 : Math.max(0, items.findIndex((e) => e.time === sel));
  const cur = items[i];
  const ref = cur ? imageRef(panel, cur) : null;
  const img = useImageSrc(ref);
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
