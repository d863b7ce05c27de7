// nagare's web console: login, then one page per concept. Pages live in
// src/pages/; this file owns the shell (navigation, session, routing).
// /p/<operatorId>/<name> is a public dashboard instead: no login, no
// navigation, no session (src/dashboard/public.tsx).
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { getSession, login, logout, onSessionChange, type Session } from './api';
import { live, type LiveStatus } from './live';
import { href, useRoute } from './router';
import { ErrorBox, useBusy } from './ui';
import { DashboardsPage } from './pages/dashboards';
import { BoardsPage } from './pages/boards';
import { AppsPage } from './pages/apps';
import { DevicesPage } from './pages/devices';
import { GroupsPage } from './pages/groups';
import { FilesPage } from './pages/files';
import { CamerasPage } from './pages/cameras';
import { UsersPage } from './pages/users';
import { CredentialsPage } from './pages/credentials';
import { PublicDashboard } from './dashboard/public';
import './styles.css';

const sections: { id: string; label: string; page: (p: { path: string[]; query: URLSearchParams }) => any }[] = [
  { id: 'dashboards', label: 'Dashboards', page: DashboardsPage },
  { id: 'boards', label: 'Boards', page: BoardsPage },
  { id: 'apps', label: 'Apps', page: AppsPage },
  { id: 'devices', label: 'Devices', page: DevicesPage },
  { id: 'groups', label: 'Groups', page: GroupsPage },
  { id: 'files', label: 'Files', page: FilesPage },
  { id: 'cameras', label: 'Cameras', page: CamerasPage },
  { id: 'users', label: 'Users', page: UsersPage },
  { id: 'credentials', label: 'Credentials', page: CredentialsPage },
];

function Login() {
  const [mode, setMode] = useState<'password' | 'authkey'>('password');
  const [busy, err, run] = useBusy();
  const submit = (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    const v = (k: string) => String(f.get(k) || '').trim();
    run(() =>
      mode === 'password'
        ? login(v('operatorId') && v('userName') ? { operatorId: v('operatorId'), userName: v('userName'), password: v('password') } : { email: v('email'), password: v('password') })
        : login({ authKeyId: v('authKeyId'), authKey: v('authKey') }),
    );
  };
  return (
    <div class="login">
      <form class="card" onSubmit={submit} aria-label="Log in">
        <h1>
          <span class="logo">流</span> nagare
        </h1>
        <div class="tabs">
          <button type="button" class={mode === 'password' ? 'active' : ''} onClick={() => setMode('password')}>
            Email / user
          </button>
          <button type="button" class={mode === 'authkey' ? 'active' : ''} onClick={() => setMode('authkey')}>
            Auth key
          </button>
        </div>
        {mode === 'password' ? (
          <>
            <label>
              Email (root account)
              <input name="email" type="email" autoComplete="username" />
            </label>
            <details>
              <summary>Log in as a SAM user instead</summary>
              <label>
                Operator ID
                <input name="operatorId" />
              </label>
              <label>
                User name
                <input name="userName" />
              </label>
            </details>
            <label>
              Password
              <input name="password" type="password" autoComplete="current-password" required />
            </label>
          </>
        ) : (
          <>
            <label>
              Auth key ID
              <input name="authKeyId" required placeholder="keyId-…" />
            </label>
            <label>
              Auth key
              <input name="authKey" type="password" required placeholder="secret-…" />
            </label>
          </>
        )}
        <ErrorBox error={err} />
        <button class="primary" type="submit" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
    </div>
  );
}

function LiveBadge() {
  const [s, setS] = useState<LiveStatus>(live.status);
  useEffect(() => live.onStatus(setS), []);
  return (
    <span class={'live-badge ' + s} title="live updates over WebSocket" data-live={s}>
      {s === 'live' ? '● live' : s === 'connecting' ? '○ connecting' : s === 'offline' ? '○ offline' : ''}
    </span>
  );
}

function Shell({ session }: { session: Session }) {
  const route = useRoute();
  const id = route.path[0] || 'dashboards';
  const section = sections.find((s) => s.id === id);
  const fullscreen = route.query.get('kiosk') === '1';
  return (
    <div class={'shell' + (fullscreen ? ' kiosk' : '')}>
      {!fullscreen && (
        <nav class="side">
          <div class="side-inner">
          <a class="brand" href={href('dashboards')}>
            <span class="logo">流</span> nagare
          </a>
          {sections.map((s) => (
            <a key={s.id} href={href(s.id)} class={s.id === id ? 'active' : ''}>
              {s.label}
            </a>
          ))}
          <div class="side-foot">
            <LiveBadge />
            <div class="who" title={session.operatorId}>
              {session.userName || 'root'}
            </div>
            <button class="link" onClick={() => logout()}>
              Log out
            </button>
          </div>
          </div>
        </nav>
      )}
      <main>{section ? <section.page path={route.path.slice(1)} query={route.query} /> : <p>Not found.</p>}</main>
    </div>
  );
}

function App() {
  const [session, setS] = useState(getSession());
  useEffect(
    () =>
      onSessionChange(() => {
        const s = getSession();
        if (!s) live.close();
        setS(s);
      }),
    [],
  );
  return session ? <Shell session={session} /> : <Login />;
}

render(location.pathname.startsWith('/p/') ? <PublicDashboard /> : <App />, document.getElementById('app')!);
