// The list of apps (GET /v1/flux/apps) with their last run, an enable
// switch and "New app".
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { href } from '../router';
import { ErrorBox, fmtAgo, Page, Show, useAsync, useBusy } from '../ui';
import { appPath, appsPath, type AppView, type Run } from './model';
import { NewAppModal } from './Yaml';

/** EnableSwitch turns an app on or off and reports the app as it is now. */
export function EnableSwitch({ app, onChange }: { app: AppView; onChange: (a: AppView) => void }) {
  const [busy, err, run] = useBusy();
  const toggle = () => run(async () => onChange(await api<AppView>('POST', appPath(app.name, app.enabled ? 'disable' : 'enable'))));
  return (
    <span class="enable-switch">
      <label class="inline switch" title={app.enabled ? 'Sources fire and messages are taken' : 'Sources are stopped'}>
        <input type="checkbox" checked={app.enabled} disabled={busy} onChange={toggle} aria-label={`enabled ${app.name}`} />
        {app.enabled ? 'enabled' : 'disabled'}
      </label>
      <ErrorBox error={err} />
    </span>
  );
}

export function AppList() {
  const list = useAsync((signal) => api<AppView[]>('GET', appsPath, { signal }), []);
  const [apps, setApps] = useState<AppView[] | undefined>();
  const [last, setLast] = useState<Record<string, Run | null>>({});
  const [creating, setCreating] = useState(false);
  useEffect(() => setApps(list.data), [list.data]);
  // The newest run of each app: one small request per app, in parallel;
  // a failure just leaves the cell empty.
  useEffect(() => {
    if (!list.data) return;
    const ac = new AbortController();
    for (const a of list.data) {
      api<Run[]>('GET', appPath(a.name, 'runs'), { query: { limit: 1 }, signal: ac.signal }).then(
        (r) => setLast((m) => ({ ...m, [a.name]: r[0] || null })),
        () => undefined,
      );
    }
    return () => ac.abort();
  }, [list.data]);
  return (
    <Page
      title="Apps"
      actions={
        <button class="primary" onClick={() => setCreating(true)}>
          New app
        </button>
      }
    >
      <Show a={{ ...list, data: apps }}>
        {(apps) =>
          apps.length === 0 ? (
            <p class="muted">No apps yet. Create one with "New app", or apply a file: <code>nagare apply -f app.yaml</code>.</p>
          ) : (
            <table class="list apps" data-testid="apps-table">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Description</th>
                  <th>Enabled</th>
                  <th>Channels</th>
                  <th>Actions</th>
                  <th>Last run</th>
                </tr>
              </thead>
              <tbody>
                {apps.map((a) => {
                  const r = last[a.name];
                  return (
                    <tr key={a.name} data-testid={'app-' + a.name}>
                      <td>
                        <a href={href('apps', a.name)}>{a.name}</a>
                      </td>
                      <td>{a.description}</td>
                      <td>
                        <EnableSwitch app={a} onChange={(v) => setApps((l) => l!.map((x) => (x.name === v.name ? v : x)))} />
                      </td>
                      <td>{a.channels.length}</td>
                      <td>{a.channels.reduce((n, c) => n + c.actions.length, 0)}</td>
                      <td>
                        {r ? (
                          <a href={href('apps', a.name, 'runs', r.runId)}>
                            <span class={'badge ' + r.status}>{r.status}</span> <span class="muted">{fmtAgo(r.startedAt)}</span>
                          </a>
                        ) : r === null ? (
                          <span class="muted">none</span>
                        ) : (
                          ''
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )
        }
      </Show>
      {creating && <NewAppModal onClose={() => setCreating(false)} />}
    </Page>
  );
}
