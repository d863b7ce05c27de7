// The dashboard YAML editor: the file as applied (GET ?format=yaml), checked
// by the server (every problem with line:column; a click puts the cursor
// there), saved with PUT (or POST for a new one) and deleted after a
// confirmation.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError } from '../api';
import { href, navigate } from '../router';
import { ErrorBox, Loading, Modal, Page, useBusy } from '../ui';

interface Problem {
  line: number;
  column: number;
  message: string;
}

const template = `name: my-dashboard
title: My dashboard
time: {from: now-1h, to: now}   # now, now-<n>(s|m|h|d), RFC 3339 or UNIX ms
refresh: 1m
panels:
  - title: Temperature
    kind: timeseries               # logs | stat | timeseries | image | table | ranking | gallery | bars
    resource: {type: Device, id: my-device}
    keys: [temperature]
    grid: {x: 0, y: 0, w: 12, h: 8}  # 24 columns, rows of 40 px
  - title: Now
    kind: stat
    resource: {type: Device, id: my-device}
    keys: [temperature]
    unit: "°C"
    decimals: 1
    thresholds: [{value: 0, color: blue}, {value: 25, color: orange}]
    grid: {x: 12, y: 0, w: 6, h: 4}
`;

/** DashboardEditor edits the dashboard name, or a new one without it. */
export function DashboardEditor({ name }: { name?: string }) {
  const [src, setSrc] = useState<string | undefined>(name ? undefined : template);
  const [loadErr, setLoadErr] = useState<unknown>(null);
  const [problems, setProblems] = useState<Problem[] | null>(null);
  const [saved, setSaved] = useState(false);
  const [confirm, setConfirm] = useState(false);
  const [busy, err, run] = useBusy();
  const area = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    if (!name) return;
    const ac = new AbortController();
    api<string>('GET', `/v1/dashboards/${encodeURIComponent(name)}`, { query: { format: 'yaml' }, signal: ac.signal }).then(
      (s) => setSrc(s),
      (e) => !ac.signal.aborted && setLoadErr(e),
    );
    return () => ac.abort();
  }, [name]);

  const edit = (s: string) => {
    setSrc(s);
    setSaved(false);
  };
  const check = async () => {
    const r = await api<{ valid: boolean; problems: Problem[] }>('POST', '/v1/dashboards/validate', { body: src, contentType: 'application/yaml' });
    setProblems(r.problems);
    return r.valid;
  };
  const validate = () => run(check);
  const save = () =>
    run(async () => {
      // Checked first, so a file with problems is not sent to be refused.
      if (!(await check())) return;
      setProblems(null);
      try {
        const d = name
          ? await api<{ name: string }>('PUT', `/v1/dashboards/${encodeURIComponent(name)}`, { body: src, contentType: 'application/yaml' })
          : await api<{ name: string }>('POST', '/v1/dashboards', { body: src, contentType: 'application/yaml' });
        setSaved(true);
        if (!name) navigate(href('dashboards', d.name));
      } catch (e) {
        // Problems found by the save itself: list them like Validate does.
        if (e instanceof ApiError && Array.isArray(e.body?.problems)) return setProblems(e.body.problems);
        throw e;
      }
    });
  const remove = () =>
    run(async () => {
      await api('DELETE', `/v1/dashboards/${encodeURIComponent(name!)}`);
      navigate(href('dashboards'));
    });
  // Put the cursor on a problem's line and column.
  const jump = (p: Problem) => {
    const el = area.current;
    if (!el) return;
    const lines = el.value.split('\n');
    let at = 0;
    for (let i = 0; i < p.line - 1 && i < lines.length; i++) at += lines[i].length + 1;
    at += Math.max(0, p.column - 1);
    el.focus();
    el.setSelectionRange(at, at);
    el.scrollTop = Math.max(0, (p.line - 3) * parseFloat(getComputedStyle(el).lineHeight || '18'));
  };

  const title = name ? `Edit ${name}` : 'New dashboard';
  const actions = (
    <>
      {name && <a href={href('dashboards', name)}>View</a>}
      <button onClick={validate} disabled={busy || src === undefined}>
        Validate
      </button>
      <button class="primary" onClick={save} disabled={busy || src === undefined}>
        Save
      </button>
      {name && (
        <button class="danger" onClick={() => setConfirm(true)} disabled={busy}>
          Delete
        </button>
      )}
    </>
  );
  return (
    <Page title={title} actions={actions}>
      {loadErr ? <ErrorBox error={loadErr} /> : null}
      <ErrorBox error={err} />
      {problems && problems.length === 0 && <div class="dash-valid ok-text">✓ Valid: no problems.</div>}
      {problems && problems.length > 0 && (
        <div class="error dash-problems" role="alert" data-testid="problems">
          {problems.length === 1 ? '1 problem' : `${problems.length} problems`}
          <ul>
            {problems.map((p, i) => (
              <li key={i}>
                <button class="link" onClick={() => jump(p)}>
                  {p.line}:{p.column}
                </button>{' '}
                {p.message}
              </li>
            ))}
          </ul>
        </div>
      )}
      {saved && <div class="dash-valid ok-text">Saved.</div>}
      {src === undefined && !loadErr ? (
        <Loading />
      ) : (
        <textarea
          ref={area}
          class="code dash-yaml"
          aria-label="Dashboard YAML"
          spellcheck={false}
          value={src}
          onInput={(e) => edit((e.target as HTMLTextAreaElement).value)}
          onKeyDown={(e) => {
            // Tab indents (two spaces, as YAML wants) instead of leaving the editor.
            if (e.key !== 'Tab' || e.shiftKey) return;
            e.preventDefault();
            const el = e.target as HTMLTextAreaElement;
            el.setRangeText('  ', el.selectionStart, el.selectionEnd, 'end');
            edit(el.value);
          }}
        />
      )}
      <p class="muted">
        Panels: logs (field), stat (keys, aggregate, unit, decimals, thresholds), timeseries (keys, aggregate), image (mode url | files | mapping, field), table
        (columns). See docs/dashboards.md.
      </p>
      {confirm && (
        <Modal title={`Delete ${name}?`} onClose={() => setConfirm(false)}>
          <p>The dashboard definition is deleted; its data stays in Harvest.</p>
          <div class="row">
            <button class="danger" onClick={remove} disabled={busy}>
              Delete
            </button>
            <button onClick={() => setConfirm(false)}>Cancel</button>
          </div>
        </Modal>
      )}
    </Page>
  );
}
