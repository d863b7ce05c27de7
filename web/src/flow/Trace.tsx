// A run's step-by-step trace (GET …/runs/{id}): every event and action
// step with its condition result, input, rendered config, output and
// error, and the run's path highlighted on the app's graph.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../api';
import { href } from '../router';
import { ErrorBox, fmtTime, JSONView, Loading } from '../ui';
import { FlowGraph, type Marks } from './Graph';
import { appPath, fmtDuration, runDuration, type AppView, type RunDetail, type Step } from './model';

// Which status a node shows when a run passed it several times (a loop):
// the one that matters most.
const weight: Record<string, number> = { failed: 6, retrying: 5, running: 4, dropped: 3, succeeded: 2, received: 1, skipped: 0 };

/** runMarks maps the graph's node ids to what the run did there. */
export function runMarks(d: RunDetail): Marks {
  const m: Marks = {};
  const put = (id: string, st: string) => {
    if (m[id] === undefined || (weight[st] ?? 0) > (weight[m[id]] ?? 0)) m[id] = st;
  };
  for (const s of d.trace) {
    if (s.kind === 'action' && s.action) put('action-' + s.action, s.status);
    else put('channel-' + s.channel, 'received');
  }
  return m;
}

function preview(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? '' : s.length > 90 ? s.slice(0, 89) + '…' : s;
}

function Block({ name, value, open }: { name: string; value: unknown; open?: boolean }) {
  if (value === undefined) return null;
  return (
    <details class="jblock" open={open}>
      <summary>
        <b>{name}</b> <code class="muted">{preview(value)}</code>
      </summary>
      <JSONView value={value} />
    </details>
  );
}

function conditionText(s: Step): string {
  if (s.status === 'skipped') return 'false (skipped)';
  return s.condition || 'none';
}

function StepItem({ s, i }: { s: Step; i: number }) {
  const name = s.kind === 'event' ? `event → ${s.channel}` : s.action!;
  return (
    <li class={'step st-' + s.status} data-testid={`step-${s.kind === 'event' ? 'event-' + s.channel : s.action}`} data-status={s.status}>
      <div class="step-head">
        <span class="step-n">{i + 1}</span>
        <b class="step-name">{name}</b>
        {s.kind === 'action' && <span class="muted">in {s.channel}</span>}
        <span class={'badge ' + s.status}>{s.status}</span>
        {s.kind === 'action' && (
          <span class={'badge cond ' + (s.status === 'skipped' ? 'false' : s.condition || 'none')} data-testid="condition" title="condition result">
            condition: {conditionText(s)}
          </span>
        )}
        <span class="muted">hop {s.hop}</span>
        {s.kind === 'action' && <span class="muted">attempt {s.attempt}</span>}
        <span class="grow" />
        <span class="muted" title={new Date(s.startedAt).toISOString()}>
          {fmtTime(s.startedAt)}.{String(s.startedAt % 1000).padStart(3, '0')}
        </span>
        <span class="dur">{fmtDuration(s.durationUs)}</span>
      </div>
      {s.error && (
        <div class="step-error" role="alert">
          {s.error}
        </div>
      )}
      {s.note && <div class="step-note">{s.note}</div>}
      {s.kind === 'action' && s.status === 'succeeded' && (
        <div class="muted small">
          {s.emitted ? `sent ${s.emitted} event${s.emitted > 1 ? 's' : ''} on` : 'sent nothing on'}
          {s.delayMs ? `, delayed ${fmtDuration(s.delayMs * 1000)}` : ''}
        </div>
      )}
      <Block name={s.kind === 'event' ? 'payload' : 'input'} value={s.input} />
      <Block name="config" value={s.config} open={!!s.error} />
      <Block name="output" value={s.output} />
    </li>
  );
}

/** TraceView shows one run: its summary, its path on the graph, its steps. */
export function TraceView({ d, app }: { d: RunDetail; app?: AppView }) {
  return (
    <div class="trace" data-testid="run-trace" data-run-id={d.runId} data-status={d.status}>
      <div class="run-summary card">
        <div class="row">
          <b>
            Run <a href={href('apps', d.app, 'runs', d.runId)}>{d.runId}</a>
          </b>
          <span class={'badge ' + d.status} data-testid="run-status">
            {d.status}
          </span>
          <span class="muted">
            {d.source} → {d.channel}
          </span>
          <span class="muted">started {fmtTime(d.startedAt)}</span>
          <span class="muted">took {runDuration(d)}</span>
          <span class="muted">
            {d.steps} steps{d.pending > 0 ? `, ${d.pending} outstanding` : ''}
          </span>
        </div>
        {d.error && (
          <div class="step-error" data-testid="run-error">
            {d.error}
          </div>
        )}
      </div>
      {app && (
        <details class="trace-graph" open>
          <summary>Path on the graph</summary>
          <FlowGraph app={app} marks={runMarks(d)} />
        </details>
      )}
      <ol class="steps">
        {d.trace.map((s, i) => (
          <StepItem key={i} s={s} i={i} />
        ))}
      </ol>
    </div>
  );
}

/**
 * RunTrace loads a run (or starts from one already in hand) and refreshes
 * it every second while it is still running.
 */
export function RunTrace({ app, runId, initial, appView }: { app: string; runId: string; initial?: RunDetail; appView?: AppView }) {
  const [d, setD] = useState<RunDetail | undefined>(initial?.runId === runId && initial.trace ? initial : undefined);
  const [err, setErr] = useState<unknown>(null);
  useEffect(() => {
    let stop = false;
    let timer: number | undefined;
    const ac = new AbortController();
    let missing = 0;
    const load = async () => {
      try {
        const r = await api<RunDetail>('GET', appPath(app, 'runs', runId), { signal: ac.signal });
        if (stop) return;
        setD(r);
        setErr(null);
        if (r.status === 'running') timer = window.setTimeout(load, 1000);
      } catch (e) {
        if (stop) return;
        // A message just sent is recorded once its first step runs: a
        // fresh run ID may be unknown for a moment.
        if (e instanceof ApiError && e.status === 404 && ++missing < 5) timer = window.setTimeout(load, 1000);
        else setErr(e);
      }
    };
    if (initial?.runId === runId && initial.status !== 'running' && initial.trace) setD(initial);
    else load();
    return () => {
      stop = true;
      ac.abort();
      clearTimeout(timer);
    };
  }, [app, runId, initial]);
  if (err && !d) return <ErrorBox error={err} />;
  if (!d) return <Loading />;
  return <TraceView d={d} app={appView} />;
}
