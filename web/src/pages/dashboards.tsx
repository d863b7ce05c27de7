// The Dashboards section: the list, a dashboard's view (#/dashboards/<name>)
// and its YAML editor (#/dashboards/<name>/edit; a new one at
// #/dashboards/_new, a name no dashboard can have). The views themselves
// live in src/dashboard/.
import { api } from '../api';
import { href, navigate } from '../router';
import { fmtAgo, Page, Show, useAsync } from '../ui';
import { DashboardEditor } from '../dashboard/editor';
import { rangeLabel, type Dashboard } from '../dashboard/model';
import { DashboardView } from '../dashboard/view';
import '../dashboard/dashboard.css';

const NEW = '_new';

export function DashboardsPage({ path, query }: { path: string[]; query: URLSearchParams }) {
  const [name, sub] = path;
  if (!name) return <DashboardList />;
  if (name === NEW) return <DashboardEditor />;
  if (sub === 'edit') return <DashboardEditor name={name} />;
  return <DashboardView name={name} query={query} />;
}

function DashboardList() {
  const a = useAsync((signal) => api<Dashboard[]>('GET', '/v1/dashboards', { signal }), []);
  const actions = (
    <a class="button primary" href={href('dashboards', NEW)}>
      New dashboard
    </a>
  );
  return (
    <Page title="Dashboards" actions={actions}>
      <Show a={a}>
        {(list) =>
          list.length === 0 ? (
            <p class="muted">
              No dashboards yet. Create one here, or apply a file with <code>nagare apply -f dashboard.yaml</code>.
            </p>
          ) : (
            <table class="list">
              <thead>
                <tr>
                  <th>Title</th>
                  <th>Name</th>
                  <th>Panels</th>
                  <th>Time range</th>
                  <th>Refresh</th>
                  <th>Updated</th>
                </tr>
              </thead>
              <tbody>
                {list.map((d) => (
                  <tr key={d.name} class="clickable" onClick={() => navigate(href('dashboards', d.name))}>
                    <td>
                      <a href={href('dashboards', d.name)} onClick={(e) => e.stopPropagation()}>
                        {d.title}
                      </a>
                      {d.public && ' '}
                      {d.public && (
                        <span class="badge" title="also served without login at /p/<operator ID>/<name>">
                          public
                        </span>
                      )}
                    </td>
                    <td>
                      <code>{d.name}</code>
                    </td>
                    <td>{d.panels.length}</td>
                    <td>{rangeLabel(d.time)}</td>
                    <td>{d.refresh || 'off'}</td>
                    <td title={new Date(d.updatedTime).toISOString()}>
                      {fmtAgo(d.updatedTime)} <span class="muted">(v{d.version})</span>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
    </Page>
  );
}
