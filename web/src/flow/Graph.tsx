// The app drawn as an SVG graph (layout.ts), and the side panel that shows
// the configuration of the node clicked. Nodes and edges carry data-testid
// and data-edge-kind so tests (and users' scripts) can find them.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { href } from '../router';
import { JSONView } from '../ui';
import { layoutApp, optionsLabel, sourceText, type GNode } from './layout';
import type { AppView, OutputView } from './model';

/** Marks colours nodes by what a run did there (node id → step status). */
export type Marks = Record<string, string>;

const PANEL_W = 360;

function trunc(s: string, n: number): string {
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}

export function FlowGraph({ app, marks, selected, onSelect }: { app: AppView; marks?: Marks; selected?: string; onSelect?: (n: GNode) => void }) {
  const L = useMemo(() => layoutApp(app), [app]);
  return (
    <div class="flow-graph-scroll">
      {/* Fit to the width available, but no smaller than 70 %: below that the text is unreadable; scroll instead. */}
      <svg
        class="flow-graph"
        width={L.width}
        height={L.height}
        viewBox={`0 0 ${L.width} ${L.height}`}
        style={{ width: '100%', maxWidth: L.width + 'px', minWidth: Math.round(L.width * 0.7) + 'px', height: 'auto' }}
        role="group"
        aria-label={`graph of app ${app.name}`}
      >
        <defs>
          <marker id="flow-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
            <path d="M0,0 L10,5 L0,10 z" class="arrow" />
          </marker>
          <marker id="flow-arrow-loop" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
            <path d="M0,0 L10,5 L0,10 z" class="arrow loop" />
          </marker>
          <marker id="flow-arrow-error" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
            <path d="M0,0 L10,5 L0,10 z" class="arrow error" />
          </marker>
        </defs>
        {L.edges.map((e) => (
          <g key={e.id} class={'gedge ' + e.kind} data-testid={e.id} data-edge-kind={e.kind}>
            <path d={e.path} />
            {e.label && (
              <text x={e.lx} y={e.ly} text-anchor="middle">
                {e.arc
                  ? e.label
                  : // Stacked, one option per line, so a label fits the gap between columns.
                    e.label.split(' · ').map((part, i, all) => (
                      <tspan key={i} x={e.lx} dy={i === 0 ? -(all.length - 1) * 12 : 12}>
                        {part}
                      </tspan>
                    ))}
              </text>
            )}
          </g>
        ))}
        {L.nodes.map((n) => {
          const mark = marks?.[n.id];
          const cls = ['gnode', n.kind, n.kind === 'action' ? 'k-' + n.action!.kind : '', mark ? 'st-' + mark : '', selected === n.id ? 'selected' : ''].join(' ');
          const label = `${n.kind} ${n.title}`;
          return (
            <g
              key={n.id}
              class={cls}
              data-testid={'node-' + n.id}
              data-status={mark}
              transform={`translate(${n.x},${n.y})`}
              role={onSelect ? 'button' : undefined}
              tabindex={onSelect ? 0 : undefined}
              aria-label={label}
              onClick={() => onSelect?.(n)}
              onKeyDown={(ev) => (ev.key === 'Enter' || ev.key === ' ') && onSelect?.(n)}
            >
              <title>{[n.tag, n.title, n.detail].filter(Boolean).join('\n') + (mark ? `\n(${mark} in this run)` : '')}</title>
              <rect class="box" width={n.w} height={n.h} rx={n.kind === 'channel' ? 20 : 7} />
              <rect class="tag" x={10} y={8} width={n.tag.length * 8.2 + 12} height={15} rx={7} />
              <text class="tag" x={15} y={19}>
                {n.tag}
              </text>
              {mark && (
                <text class="mark" x={n.w - 10} y={19} text-anchor="end">
                  {mark}
                </text>
              )}
              <text class="title" x={10} y={38}>
                {trunc(n.title, Math.floor((n.w - 18) / 8))}
              </text>
              {n.detail && (
                <text class="detail" x={10} y={54}>
                  {trunc(n.detail, Math.floor((n.w - 18) / 7))}
                </text>
              )}
            </g>
          );
        })}
      </svg>
    </div>
  );
}

/** GraphTab is the graph with a side panel for the clicked node. */
export function GraphTab({ app }: { app: AppView }) {
  const [sel, setSel] = useState<GNode | null>(null);
  // The panel goes beside the graph when the graph still fits (nearly)
  // next to it, else below it: a wide app stays readable.
  const ref = useRef<HTMLDivElement>(null);
  const [avail, setAvail] = useState(0);
  useEffect(() => {
    const ro = new ResizeObserver((es) => setAvail(es[0].contentRect.width));
    ro.observe(ref.current!);
    return () => ro.disconnect();
  }, []);
  const graphWidth = useMemo(() => layoutApp(app).width, [app]);
  const beside = avail - PANEL_W - 14 >= graphWidth * 0.8;
  return (
    <div ref={ref} class={'flow-graph-tab' + (sel ? (beside ? ' panel-beside' : ' panel-below') : '')}>
      <div class="flow-graph-main">
        <FlowGraph app={app} selected={sel?.id} onSelect={setSel} />
        <p class="muted small">
          Click a source, channel or action to see its configuration. Dashed orange arcs (↺) are loops: outputs back to the same or an earlier channel. Dashed red
          edges lead to an action's onError channel.
        </p>
      </div>
      {sel && <NodePanel app={app} node={sel} onClose={() => setSel(null)} onSelect={setSel} />}
    </div>
  );
}

function Field({ name, children }: { name: string; children: any }) {
  return (
    <div class="kv">
      <div class="k">{name}</div>
      <div class="v">{children}</div>
    </div>
  );
}

function Value({ v }: { v: unknown }) {
  if (v === null || v === undefined) return <span class="muted">—</span>;
  if (typeof v === 'object') return <JSONView value={v} />;
  return <code>{String(v)}</code>;
}

/** Route shows where an output (or onError) sends: its channel, options and transform. */
function Route({ to, pick, none }: { to?: OutputView; pick: (id: string) => void; none: string }) {
  if (!to) return <p class="muted">{none}</p>;
  return (
    <>
      <Field name="channel">
        <button class="link" onClick={() => pick('channel-' + to.channel)}>
          {to.channel}
        </button>
      </Field>
      {optionsLabel(to) && <Field name="options">{optionsLabel(to)}</Field>}
      {to.transform !== undefined && (
        <Field name="transform">
          <Value v={to.transform} />
        </Field>
      )}
    </>
  );
}

function NodePanel({ app, node, onClose, onSelect }: { app: AppView; node: GNode; onClose: () => void; onSelect: (n: GNode) => void }) {
  const layout = useMemo(() => layoutApp(app), [app]);
  const pick = (id: string) => {
    const n = layout.nodes.find((x) => x.id === id);
    if (n) onSelect(n);
  };
  const ch = app.channels.find((c) => c.name === node.channel)!;
  let body;
  if (node.kind === 'action') {
    const a = node.action!;
    body = (
      <>
        {a.description && <p>{a.description}</p>}
        <Field name="channel">
          <button class="link" onClick={() => pick('channel-' + node.channel)}>
            {node.channel}
          </button>
        </Field>
        <Field name="condition">{a.condition ? <code class="cond">{a.condition}</code> : <span class="muted">always runs</span>}</Field>
        <Field name="timeout">
          <code>{a.timeout}</code>
        </Field>
        <Field name="retries">
          <code>{a.retries}</code>
        </Field>
        <h3>{a.kind} configuration</h3>
        {Object.keys(a.config).length === 0 && <p class="muted">No fields.</p>}
        {Object.entries(a.config)
          .sort(([x], [y]) => x.localeCompare(y))
          .map(([k, v]) => (
            <Field key={k} name={k}>
              <Value v={v} />
            </Field>
          ))}
        <h3>Output</h3>
        <Route to={a.output} pick={pick} none="None: the result is recorded in the run, not sent on." />
        {a.onError && (
          <>
            <h3>On error</h3>
            <Route to={a.onError} pick={pick} none="" />
          </>
        )}
      </>
    );
  } else if (node.kind === 'channel') {
    body = (
      <>
        {ch.description && <p>{ch.description}</p>}
        <Field name="sources">{ch.sources.length ? ch.sources.map((s, i) => <div key={i}>{sourceText(s)[0]}</div>) : <span class="muted">none (API messages, other channels)</span>}</Field>
        <Field name="actions">
          {ch.actions.length ? (
            ch.actions.map((a) => (
              <div key={a.name}>
                <button class="link" onClick={() => pick('action-' + a.name)}>
                  {a.name}
                </button>{' '}
                <span class="muted">{a.kind}</span>
              </div>
            ))
          ) : (
            <span class="muted">none</span>
          )}
        </Field>
        {ch.webhookUrl && (
          <Field name="webhook URL">
            <code class="wrap">{ch.webhookUrl}</code>
          </Field>
        )}
        <p>
          <a href={href('apps', app.name, 'test') + '?channel=' + encodeURIComponent(ch.name)}>Send a test message to {ch.name} →</a>
        </p>
      </>
    );
  } else {
    const s = node.source;
    const { kind, ...fields } = s || { kind: 'api' };
    body = (
      <>
        <Field name="feeds">
          <button class="link" onClick={() => pick('channel-' + node.channel)}>
            {node.channel}
          </button>
        </Field>
        {s ? (
          Object.entries(fields).map(([k, v]) => (
            <Field key={k} name={k}>
              <Value v={v} />
            </Field>
          ))
        ) : (
          <p>
            Every channel takes messages from the API (<code>POST …/channels/{node.channel}/messages</code>) and test runs. This one has no other source.
          </p>
        )}
        {kind === 'webhook' && ch.webhookUrl && (
          <Field name="URL">
            <code class="wrap">{ch.webhookUrl}</code>
          </Field>
        )}
      </>
    );
  }
  return (
    <aside class="flow-panel card" aria-label={`${node.kind} ${node.title}`} data-testid="node-panel">
      <header>
        <span class={'pill ' + node.kind}>{node.tag}</span>
        <h2>{node.title}</h2>
        <button class="icon" aria-label="Close panel" onClick={onClose}>
          ×
        </button>
      </header>
      {body}
    </aside>
  );
}
