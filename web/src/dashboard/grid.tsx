// The panel kind switch and the 24-column grid, shared by the console's
// dashboard view (view.tsx) and the public page (public.tsx): a panel is
// drawn the same way whichever data source the DashContext gives it.
import { useContext } from 'preact/hooks';
import { DashContext } from './data';
import type { Panel } from './model';
import { ImagePanel, LogsPanel, PanelFrame, StatPanel, TablePanel, type PanelProps } from './panels';
import { BarsPanel, GalleryPanel, RankingPanel } from './showcase';
import { TimeseriesPanel } from './timeseries';

export function PanelView(p: PanelProps) {
  const ctx = useContext(DashContext);
  switch (p.panel.kind) {
    case 'logs':
      return <LogsPanel {...p} />;
    case 'stat':
      return <StatPanel {...p} />;
    case 'table':
      return <TablePanel {...p} />;
    case 'image':
      return <ImagePanel {...p} />;
    case 'ranking':
      return <RankingPanel {...p} />;
    case 'gallery':
      return <GalleryPanel {...p} />;
    case 'bars':
      return <BarsPanel {...p} />;
    case 'timeseries':
      if (!ctx.fixed) return <TimeseriesPanel {...p} />;
      return (
        <PanelFrame panel={p.panel} index={p.index}>
          <div class="dash-empty muted">Time series are not shown on public pages</div>
        </PanelFrame>
      );
    default:
      return (
        <PanelFrame panel={p.panel} index={p.index}>
          <div class="muted">Unknown panel kind {String(p.panel.kind)}</div>
        </PanelFrame>
      );
  }
}

/** PanelGrid lays panels out on the grid; in reading order (y, then x) for the one-column narrow layout. */
export function PanelGrid({ panels }: { panels: Panel[] }) {
  const order = panels.map((p, i) => [p, i] as [Panel, number]).sort(([a], [b]) => a.grid.y - b.grid.y || a.grid.x - b.grid.x);
  return (
    <div class="dash-grid">
      {order.map(([p, i]) => (
        <PanelView key={i} panel={p} index={i} />
      ))}
    </div>
  );
}
