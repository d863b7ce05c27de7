// The timeseries panel: the series query (one bucket per ~pixel of the
// panel, at most 1,000) drawn with uPlot, one line per key, gaps kept as
// gaps, drag to zoom on time (double-click resets), refetched after
// pushes and sliding with the dashboard's clock.
import { useContext, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { ErrorBox } from '../ui';
import { DashContext, useSeries, type SeriesResult } from './data';
import { fmtNum, resolveRange, seriesColors, type Panel } from './model';
import { PanelFrame, type PanelProps } from './panels';

/**
 * align turns the series answer into uPlot's columns. The server leaves
 * empty buckets out; per key, a null (uPlot breaks the line there) goes
 * after a bucket whose successor is further away than the key's usual
 * spacing: one bucket for dense data, 2.5 times the median step for data
 * sparser than the buckets (readings every 5 minutes still form a line,
 * an hour without any is a gap). Rows only other keys have are undefined,
 * which uPlot draws across.
 */
export function align(res: SeriesResult, keys: string[], agg: string): uPlot.AlignedData {
  const rows = new Set<number>();
  const cols = keys.map((k) => {
    const buckets = res.series.find((s) => s.key === k)?.buckets || [];
    const steps = buckets.slice(1).map((b, i) => b.time - buckets[i].time).sort((a, b) => a - b);
    const gap = Math.max(res.bucketMs, 2.5 * (steps[Math.floor(steps.length / 2)] || 0));
    const breaks: number[] = [];
    buckets.forEach((b, i) => {
      rows.add(b.time);
      const next = buckets[i + 1];
      if (next && next.time - b.time > gap) breaks.push(b.time + res.bucketMs);
    });
    breaks.forEach((t) => rows.add(t));
    return { buckets, breaks };
  });
  const xs = [...rows].sort((a, b) => a - b);
  const at = new Map(xs.map((t, i) => [t, i]));
  const ys = cols.map(({ buckets, breaks }) => {
    const col: (number | null | undefined)[] = new Array(xs.length).fill(undefined);
    for (const b of buckets) col[at.get(b.time)!] = (b as any)[agg] ?? b.avg;
    for (const t of breaks) col[at.get(t)!] = null;
    return col;
  });
  return [xs, ...ys];
}

function cssVar(el: Element, name: string, fallback: string): string {
  return getComputedStyle(el).getPropertyValue(name).trim() || fallback;
}

function options(panel: Panel, keys: string[], el: HTMLElement, view: () => [number, number], zoom: (z: [number, number] | null) => void): uPlot.Options {
  const fg = cssVar(el, '--muted', '#6b7385');
  const line = cssVar(el, '--line', '#dfe3ea');
  const unit = panel.unit ? ' ' + panel.unit : '';
  const axis = { stroke: fg, grid: { stroke: line, width: 1 }, ticks: { stroke: line, width: 1 } };
  return {
    width: 300,
    height: 150,
    ms: 1,
    scales: { x: { time: true, range: () => view() } },
    series: [
      {},
      ...keys.map((k, i) => ({
        label: k,
        stroke: seriesColors[i % seriesColors.length],
        width: 1.5,
        spanGaps: false,
        // Shown where points are sparse (uPlot decides), filled so a lone bucket stands out.
        points: { size: 6, fill: seriesColors[i % seriesColors.length] },
        value: (_: uPlot, v: number | null) => (v === null || v === undefined ? '–' : fmtNum(v, panel.decimals) + unit),
      })),
    ],
    axes: [axis, { ...axis, size: 48, values: (_: uPlot, vals: number[]) => vals.map((v) => fmtNum(v, panel.decimals)) }],
    cursor: {
      drag: { x: true, y: false, setScale: false },
      bind: {
        dblclick: () => () => {
          zoom(null);
          return null;
        },
      },
    },
    hooks: {
      setSelect: [
        (u) => {
          const { left, width } = u.select;
          if (width > 3) zoom([u.posToVal(left, 'x'), u.posToVal(left + width, 'x')]);
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
        },
      ],
    },
  };
}

export function TimeseriesPanel({ panel, index }: PanelProps) {
  const ctx = useContext(DashContext);
  const range = panel.time ?? ctx.range;
  const keys = panel.keys || [];
  const agg = panel.aggregate || 'avg';
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const zoomed = useRef<[number, number] | null>(null);
  const win = useRef<[number, number]>([0, 1]);
  const [width, setWidth] = useState(0);
  const [isZoomed, setIsZoomed] = useState(false);
  // Whole 50 px steps, so resizing does not refetch at every pixel.
  const buckets = width ? Math.min(1000, Math.max(50, Math.round(width / 50) * 50)) : 0;
  const st = useSeries(ctx.hub, panel.resource, keys, range, buckets, ctx.gen);

  const r = resolveRange(range, ctx.now);
  win.current = r ? [r.from, r.to] : win.current;

  const fit = () => {
    const u = plot.current;
    const el = box.current;
    if (!u || !el) return;
    const legend = u.root.querySelector('.u-legend') as HTMLElement | null;
    const size = () => ({ width: el.clientWidth, height: Math.max(60, el.clientHeight - (legend?.offsetHeight || 0)) });
    u.setSize(size());
    // The legend wraps by the width, and uPlot lays out after this task:
    // measure it again once laid out.
    requestAnimationFrame(() => plot.current === u && u.setSize(size()));
  };
  const setZoom = (z: [number, number] | null) => {
    zoomed.current = z;
    setIsZoomed(!!z);
    const [min, max] = z || win.current;
    plot.current?.setScale('x', { min, max });
  };

  useEffect(() => {
    const el = box.current!;
    const ro = new ResizeObserver(() => {
      setWidth(el.clientWidth);
      fit();
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);

  useLayoutEffect(() => {
    if (!st.data || !box.current) return;
    const data = align(st.data, keys, agg);
    if (plot.current) plot.current.setData(data);
    else {
      const opts = options(panel, keys, box.current, () => zoomed.current || win.current, setZoom);
      plot.current = new uPlot(opts, data, box.current);
      fit();
    }
  }, [st.data]);

  // A new range is a new view: leave the zoom.
  useEffect(() => {
    if (zoomed.current) setZoom(null);
  }, [range.from, range.to]);

  // The window slides with the clock unless the user zoomed in.
  useEffect(() => {
    if (!zoomed.current) plot.current?.setScale('x', { min: win.current[0], max: win.current[1] });
  }, [win.current[0], win.current[1]]);

  const points = st.data ? st.data.series.reduce((n, s) => n + s.buckets.length, 0) : 0;
  const tools = isZoomed && (
    <button class="link" onClick={() => setZoom(null)} title="or double-click the chart">
      reset zoom
    </button>
  );
  // The chart's element stays mounted through errors: uPlot owns its inside.
  return (
    <PanelFrame panel={panel} index={index} loading={st.loading} tools={tools}>
      {st.error ? <ErrorBox error={st.error} /> : null}
      <div class="dash-ts" data-testid="timeseries" data-points={points}>
        <div class="dash-ts-plot" ref={box} />
        {st.data && points === 0 && <div class="dash-ts-empty muted">No data in this time range</div>}
      </div>
    </PanelFrame>
  );
}
