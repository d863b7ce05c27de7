// An app's runs, newest first (GET …/runs): filtered by status through the
// route's ?status=, paged with the x-soracom-next-key the API hands out.
import { useEffect, useRef, useState } from 'preact/hooks';
import { apiWithNext } from '../api';
import { href, navigate } from '../router';
import { ErrorBox, fmtAgo, fmtTime, Loading, useBusy } from '../ui';
import { appPath, runDuration, type Run } from './model';

const PAGE = 50;
const statuses = ['', 'succeeded', 'failed', 'running'];

export function RunsTab({ app, status }: { app: string; status: string }) {
  const [runs, setRuns] = useState<Run[] | undefined>();
  const [next, setNext] = useState<string | null>(null);
  const [n, setN] = useState(0);
  const [busy, err, run] = useBusy();
  // A page answered after the filter changed belongs to the old list.
  const seq = useRef(0);
  const load = (after: string | null, prev: Run[]) => {
    const mine = ++seq.current;
    return run(async () => {
      const r = await apiWithNext<Run[]>(appPath(app, 'runs'), { query: { status, limit: PAGE, last_evaluated_key: after } });
      if (mine !== seq.current) return;
      setRuns([...prev, ...r.items]);
      setNext(r.next);
    });
  };
  useEffect(() => {
    setRuns(undefined);
    load(null, []);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [app, status, n]);
  const open = (r: Run) => navigate(href('apps', app, 'runs', r.runId));
  return (
    <div class="runs-tab">
      <div class="row toolbar">
        <label class="inline">
          Status
          <select
            aria-label="Status filter"
            value={status}
            onChange={(e) => {
              const v = (e.target as HTMLSelectElement).value;
              navigate(href('apps', app, 'runs') + (v ? '?status=' + v : ''));
            }}
          >
            {statuses.map((s) => (
              <option key={s} value={s}>
                {s || 'all'}
              </option>
            ))}
          </select>
        </label>
        <button onClick={() => setN((x) => x + 1)} disabled={busy}>
          Refresh
        </button>
        <span class="muted">{runs ? `${runs.length} run${runs.length === 1 ? '' : 's'}${next ? ' (more below)' : ''}` : ''}</span>
      </div>
      <ErrorBox error={err} />
      {runs === undefined ? (
        !err && <Loading />
      ) : runs.length === 0 ? (
        <p class="muted">No {status || ''} runs yet. Send a message from the Test tab.</p>
      ) : (
        <table class="list runs" data-testid="runs-table">
          <thead>
            <tr>
              <th>Started</th>
              <th>Channel</th>
              <th>Source</th>
              <th>Status</th>
              <th>Duration</th>
              <th>Steps</th>
              <th>Error</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((r) => (
              <tr key={r.runId} class="clickable" data-testid={'run-' + r.runId} data-status={r.status} onClick={() => open(r)}>
                <td>
                  <a href={href('apps', app, 'runs', r.runId)} title={r.runId} onClick={(e) => e.stopPropagation()}>
                    {fmtTime(r.startedAt)}
                  </a>
                  <div class="muted small">{fmtAgo(r.startedAt)}</div>
                </td>
                <td>{r.channel}</td>
                <td>{r.source}</td>
                <td>
                  <span class={'badge ' + r.status}>{r.status}</span>
                </td>
                <td>{runDuration(r)}</td>
                <td>{r.steps}</td>
                <td class="err-cell" title={r.error}>
                  {r.error ? <span class="bad-text">{r.error.length > 120 ? r.error.slice(0, 119) + '…' : r.error}</span> : ''}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {next && runs && (
        <p>
          <button onClick={() => load(next, runs)} disabled={busy}>
            {busy ? 'Loading…' : 'Load more'}
          </button>
        </p>
      )}
    </div>
  );
}
