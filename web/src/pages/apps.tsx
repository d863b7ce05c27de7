// Flow apps (#/apps…): the list, and an app's Graph, Runs, YAML and Test
// tabs, and a run's trace. The pieces live in src/flow/.
//   #/apps                       list
//   #/apps/<id>                  graph
//   #/apps/<id>/runs?status=     runs
//   #/apps/<id>/runs/<runId>     a run's trace
//   #/apps/<id>/yaml             YAML editor
//   #/apps/<id>/test?channel=    send a test message
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { href } from '../router';
import { fmtTime, Page, Show, useAsync } from '../ui';
import { AppList, EnableSwitch } from '../flow/AppList';
import { GraphTab } from '../flow/Graph';
import { appPath, type AppView } from '../flow/model';
import { RunsTab } from '../flow/Runs';
import { TestTab } from '../flow/Test';
import { RunTrace } from '../flow/Trace';
import { YamlTab } from '../flow/Yaml';
import '../flow/flow.css';

const tabs = [
  { id: '', label: 'Graph' },
  { id: 'runs', label: 'Runs' },
  { id: 'yaml', label: 'YAML' },
  { id: 'test', label: 'Test' },
];

export function AppsPage({ path, query }: { path: string[]; query: URLSearchParams }) {
  if (path.length === 0) return <AppList />;
  return <AppDetail id={path[0]} rest={path.slice(1)} query={query} />;
}

function AppDetail({ id, rest, query }: { id: string; rest: string[]; query: URLSearchParams }) {
  const a = useAsync((signal) => api<AppView>('GET', appPath(id), { signal }), [id]);
  // Enabling/disabling answers with the app; show it without a reload.
  const [app, setApp] = useState<AppView | undefined>();
  useEffect(() => setApp(a.data), [a.data]);
  const tab = rest[0] || '';
  const runId = tab === 'runs' ? rest[1] : undefined;
  return (
    <Page
      title={
        <>
          <a href={href('apps')} class="crumb">
            Apps
          </a>{' '}
          / {id}
        </>
      }
      actions={app && <EnableSwitch app={app} onChange={setApp} />}
    >
      <Show a={{ ...a, data: app?.name === id ? app : undefined }}>
        {(app) => (
          <>
            <div class="app-meta muted">
              {app.description && <span>{app.description}</span>}
              <span>
                version {app.version}, updated {fmtTime(app.updatedTime)}
              </span>
            </div>
            <nav class="flow-tabs" aria-label="App views">
              {tabs.map((t) => (
                <a key={t.id} href={t.id ? href('apps', id, t.id) : href('apps', id)} class={tab === t.id ? 'active' : ''} aria-current={tab === t.id ? 'page' : undefined}>
                  {t.label}
                </a>
              ))}
            </nav>
            {tab === '' && <GraphTab app={app} />}
            {tab === 'runs' && !runId && <RunsTab app={id} status={query.get('status') || ''} />}
            {runId && (
              <>
                <p>
                  <a href={href('apps', id, 'runs')}>← all runs</a>
                </p>
                <RunTrace key={runId} app={id} runId={runId} appView={app} />
              </>
            )}
            {tab === 'yaml' && <YamlTab app={app} onSaved={a.reload} />}
            {tab === 'test' && <TestTab app={app} channel={query.get('channel') || ''} />}
            {!tabs.some((t) => t.id === tab) && <p>Not found.</p>}
          </>
        )}
      </Show>
    </Page>
  );
}
