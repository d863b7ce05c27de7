// Cameras (SoraCam API): the list and registration, and a camera page with
// the live snapshot, the recording timeline, still exports at a chosen
// moment (export, then poll until done), recent exports, settings, delete.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api';
import { href, navigate } from '../router';
import { ErrorBox, Modal, Page, Show, fmtTime, useAsync, useBusy } from '../ui';
import { Card, ConfirmButton, DL, useVisibleInterval, FormActions } from '../resources/common';
import { useFreshImage } from '../resources/blobimg';
import { Timeline, covered, type Period } from '../resources/timeline';

interface Camera {
  deviceId: string;
  name: string;
  driver: string;
  connected: boolean;
  lastConnectedTime?: number;
  rtspUrl?: string;
  credentialsId?: string;
  recording: boolean;
  retentionDays: number;
  snapshotCache: boolean;
  upstream?: { endpoint: string; deviceId?: string };
  session?: { connected: boolean; lastError?: string; reconnects: number };
}

interface Export {
  exportId: string;
  deviceId: string;
  requestedTime: number;
  status: string; // initializing, processing, completed, failed, expired
  url?: string;
  expiryTime?: number;
  failureReason?: string;
  filePath?: string;
}

const camPath = (id: string) => '/v1/sora_cam/devices/' + encodeURIComponent(id);
const finished = (s: string) => s === 'completed' || s === 'failed' || s === 'expired';
/** Without a recording only moments this close to the request can be exported (docs/cameras.md). */
const LIVE_EXPORT_MS = 30_000;

export function CamerasPage({ path }: { path: string[]; query: URLSearchParams }) {
  return path[0] ? <CameraDetail key={path[0]} id={path[0]} /> : <CameraList />;
}

function CameraList() {
  const cams = useAsync((signal) => api<Camera[]>('GET', '/v1/sora_cam/devices', { signal }), []);
  const [adding, setAdding] = useState(false);
  return (
    <Page
      title="Cameras"
      actions={
        <button class="primary" onClick={() => setAdding(true)}>
          Register camera
        </button>
      }
    >
      <Show a={cams}>
        {(cs) =>
          cs.length === 0 ? (
            <p class="muted">
              No cameras yet. Register an RTSP camera (no camera at hand? <code>nagare camera simulate</code> serves one).
            </p>
          ) : (
            <table class="list" aria-label="Cameras">
              <thead>
                <tr>
                  <th>Camera</th>
                  <th>Source</th>
                  <th>Session</th>
                  <th>Recording</th>
                </tr>
              </thead>
              <tbody>
                {cs.map((c) => (
                  <tr key={c.deviceId} class="clickable" onClick={() => navigate(href('cameras', c.deviceId))}>
                    <td>
                      <a href={href('cameras', c.deviceId)} onClick={(e) => e.stopPropagation()}>
                        {c.name || c.deviceId}
                      </a>
                      <div class="muted small mono">{c.deviceId}</div>
                    </td>
                    <td class="small mono">{c.driver === 'rtsp' ? c.rtspUrl : `soracom: ${c.upstream?.endpoint || ''}`}</td>
                    <td>
                      <ConnBadge c={c} />
                    </td>
                    <td>{c.recording ? <span class="badge ok">{c.retentionDays} days</span> : <span class="badge">off</span>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
      {adding && (
        <CameraForm
          onClose={(id) => {
            setAdding(false);
            if (id) navigate(href('cameras', id));
          }}
        />
      )}
    </Page>
  );
}

function ConnBadge({ c }: { c: Camera }) {
  if (!c.session) return <span class="badge">on demand</span>;
  return (
    <span class={'badge ' + (c.session.connected ? 'ok' : 'bad')} title={c.session.lastError || ''}>
      {c.session.connected ? 'connected' : 'disconnected'}
    </span>
  );
}

/** CameraForm registers a camera (no camera given) or changes its settings. */
function CameraForm({ camera, onClose }: { camera?: Camera; onClose: (id?: string) => void }) {
  const [f, setF] = useState({
    deviceId: camera?.deviceId || '',
    name: camera?.name || '',
    rtspUrl: camera?.rtspUrl || '',
    credentialsId: camera?.credentialsId || '',
    recording: camera?.recording ?? false,
    retentionDays: camera?.retentionDays ?? 7,
    snapshotCache: camera?.snapshotCache ?? true,
  });
  // Cameras authenticate with username-password credentials only.
  const creds = useAsync(
    async (signal) => (await api<{ credentialsId: string; type: string }[]>('GET', '/v1/credentials', { signal })).filter((c) => c.type === 'username-password-credentials'),
    [],
  );
  const [busy, err, run] = useBusy();
  const rtsp = !camera || camera.driver === 'rtsp';
  const set = (k: keyof typeof f) => (e: Event) => {
    const t = e.target as HTMLInputElement;
    setF({ ...f, [k]: t.type === 'checkbox' ? t.checked : t.type === 'number' ? Number(t.value) : t.value });
  };
  const submit = (e: Event) => {
    e.preventDefault();
    run(async () => {
      const body: Record<string, unknown> = { name: f.name, recording: f.recording, retentionDays: f.retentionDays, snapshotCache: f.snapshotCache };
      if (rtsp) Object.assign(body, { rtspUrl: f.rtspUrl.trim(), credentialsId: f.credentialsId });
      if (camera) {
        await api('PUT', camPath(camera.deviceId), { body });
        onClose(camera.deviceId);
      } else {
        const c = await api<Camera>('POST', '/v1/sora_cam/devices', { body: { deviceId: f.deviceId.trim(), ...body } });
        onClose(c.deviceId);
      }
    });
  };
  return (
    <Modal title={camera ? `Settings of ${camera.name || camera.deviceId}` : 'Register camera'} onClose={() => onClose()}>
      <form onSubmit={submit} aria-label={camera ? 'Camera settings' : 'Register camera'}>
        {!camera && (
          <label>
            Camera ID
            <input value={f.deviceId} onInput={set('deviceId')} required pattern="[A-Za-z0-9_.:\-]{1,64}" placeholder="LOBBY" autoFocus />
          </label>
        )}
        <label>
          Name
          <input value={f.name} onInput={set('name')} placeholder="Lobby" />
        </label>
        {rtsp ? (
          <>
            <label>
              RTSP URL
              <input value={f.rtspUrl} onInput={set('rtspUrl')} required placeholder="rtsp://192.168.1.20:554/stream1" />
            </label>
            <p class="muted small hint">Without user name or password: those come from the credentials below.</p>
            <label>
              Credentials
              <select aria-label="Credentials" value={f.credentialsId} onChange={set('credentialsId')}>
                <option value="">(none)</option>
                {(creds.data || []).map((c) => (
                  <option key={c.credentialsId} value={c.credentialsId}>
                    {c.credentialsId}
                  </option>
                ))}
                {f.credentialsId && creds.data && !creds.data.some((c) => c.credentialsId === f.credentialsId) && (
                  <option value={f.credentialsId}>{f.credentialsId} (missing)</option>
                )}
              </select>
            </label>
            <p class="muted small hint">
              A username-password credential from the <a href={href('credentials')}>credentials store</a>.
            </p>
          </>
        ) : (
          <p class="muted small">This camera's pictures come from an upstream SoraCam API; change its upstream with the API.</p>
        )}
        <label class="inline">
          <input type="checkbox" checked={f.recording} onChange={set('recording')} /> Record continuously
        </label>
        <label>
          Keep recordings (days)
          <input type="number" min={1} max={3650} value={f.retentionDays} onInput={set('retentionDays')} />
        </label>
        <label class="inline">
          <input type="checkbox" checked={f.snapshotCache} onChange={set('snapshotCache')} /> Keep a session open for fast snapshots
        </label>
        <ErrorBox error={err} />
        <FormActions onCancel={onClose} disabled={busy} label={camera ? 'Save' : 'Register'} />
      </form>
    </Modal>
  );
}

function CameraDetail({ id }: { id: string }) {
  const cam = useAsync((signal) => api<Camera>('GET', camPath(id), { signal }), [id]);
  const [editing, setEditing] = useState(false);
  const [chosen, setChosen] = useState<number | null>(null);
  const [exportsN, setExportsN] = useState(0);
  const c = cam.data;
  // The session's state changes on its own (connects, drops).
  useVisibleInterval(cam.reload, 10_000);
  return (
    <Page
      title={
        <>
          <a href={href('cameras')} class="crumb">
            Cameras
          </a>{' '}
          / {c?.name || id}
        </>
      }
      actions={
        c && (
          <>
            <button onClick={() => setEditing(true)}>Settings</button>
            <ConfirmButton
              label="Delete camera"
              title={`Delete camera ${c.name || id}?`}
              onConfirm={async () => {
                await api('DELETE', camPath(id));
                navigate(href('cameras'));
              }}
            >
              <p>The camera is removed; its recordings are deleted by retention.</p>
            </ConfirmButton>
          </>
        )
      }
    >
      <Show a={cam}>
        {(c) => (
          <>
            <div class="res-grid cam-grid">
              <Card title="Live snapshot" class="snapshot-card">
                {c.driver === 'rtsp' ? <Snapshot id={id} /> : <p class="muted">Live snapshots need the rtsp driver; export a still instead.</p>}
              </Card>
              <Card title="Details">
                <DL
                  items={[
                    ['Camera ID', <code>{c.deviceId}</code>],
                    ['Driver', c.driver],
                    c.driver === 'rtsp' ? ['RTSP URL', <code class="wrap">{c.rtspUrl}</code>] : ['Upstream', c.upstream?.endpoint],
                    ['Credentials', c.credentialsId ? <a href={href('credentials')}>{c.credentialsId}</a> : ''],
                    ['Session', <ConnBadge c={c} />],
                    ['Last error', c.session?.lastError ? <span class="bad-text small">{c.session.lastError}</span> : ''],
                    ['Last connected', fmtTime(c.lastConnectedTime)],
                    ['Recording', c.recording ? `on, kept ${c.retentionDays} days` : 'off'],
                    ['Snapshot cache', c.snapshotCache ? 'on' : 'off'],
                  ]}
                />
              </Card>
            </div>
            <Recordings id={id} recording={c.recording} chosen={chosen} onChoose={setChosen} />
            <ExportStill id={id} chosen={chosen} onExported={() => setExportsN((n) => n + 1)} />
            <RecentExports id={id} n={exportsN} />
          </>
        )}
      </Show>
      {editing && c && (
        <CameraForm
          camera={c}
          onClose={() => {
            setEditing(false);
            cam.reload();
          }}
        />
      )}
    </Page>
  );
}

function Snapshot({ id }: { id: string }) {
  const snap = useFreshImage(camPath(id) + '/snapshot');
  const [auto, setAuto] = useState(true);
  useVisibleInterval(snap.reload, 5000, auto);
  return (
    <>
      <div class="snapshot">
        {snap.url ? <img src={snap.url} alt="Live snapshot" data-testid="snapshot" /> : <div class="snapshot-empty">{snap.loading ? 'Taking a snapshot…' : 'No picture'}</div>}
      </div>
      {snap.error && <div class="error">{snap.error}</div>}
      <div class="row">
        <button onClick={snap.reload} disabled={snap.loading}>
          Refresh
        </button>
        <label class="inline">
          <input type="checkbox" checked={auto} onChange={(e) => setAuto((e.target as HTMLInputElement).checked)} /> every 5 s
        </label>
        <span class="muted small">{snap.at ? 'taken ' + fmtTime(snap.at) : ''}</span>
      </div>
    </>
  );
}

function Recordings({ id, recording, chosen, onChoose }: { id: string; recording: boolean; chosen: number | null; onChoose: (t: number | null) => void }) {
  const [hours, setHours] = useState(24);
  const [to, setTo] = useState(Date.now());
  const from = to - hours * 3600_000;
  const recs = useAsync(
    (signal) => api<{ records: Period[] }>('GET', camPath(id) + '/recordings_and_events', { query: { from, to }, signal }),
    [id, from, to],
  );
  // Recorded periods grow while the camera records; move the window along.
  useVisibleInterval(() => setTo(Date.now()), 10_000, recording);
  const periods = recs.data?.records || [];
  return (
    <Card
      title="Recordings"
      class="wide"
      actions={
        <>
          {[24, 1].map((h) => (
            <button
              key={h}
              class={hours === h ? 'primary' : ''}
              onClick={() => {
                setHours(h);
                setTo(Date.now());
              }}
            >
              {h} h
            </button>
          ))}
          <button onClick={() => setTo(Date.now())}>Refresh</button>
        </>
      }
    >
      <ErrorBox error={recs.error} />
      <Timeline from={from} to={to} periods={periods} chosen={chosen} onChoose={onChoose} />
      {chosen !== null && (
        <p class="row">
          <span>
            Chosen: <strong>{fmtTime(chosen)}</strong>
          </span>
          <span class="bad-text small">{exportHint(periods, chosen, Date.now())}</span>
          <button class="link" onClick={() => onChoose(null)}>
            Back to now
          </button>
        </p>
      )}
      <p class="muted small">
        {periods.length === 0
          ? recording
            ? 'No recorded period in this window yet: segments appear within seconds of the camera connecting.'
            : 'Recording is off for this camera: only the last few seconds can be exported, from the live picture.'
          : `${periods.length} recorded period(s). Click the timeline to choose a moment to export.`}
      </p>
    </Card>
  );
}

/**
 * ExportStill asks for the picture at the chosen moment (or now), then
 * polls the export until it is completed or failed — SoraCam exports are
 * asynchronous — and shows the image from its signed URL.
 */
function ExportStill({ id, chosen, onExported }: { id: string; chosen: number | null; onExported: () => void }) {
  const [exp, setExp] = useState<Export | null>(null);
  const [busy, err, run] = useBusy();
  const alive = useRef(true);
  useEffect(
    () => () => {
      alive.current = false;
    },
    [],
  );
  const start = () =>
    run(async () => {
      let e = await api<Export>('POST', camPath(id) + '/images/exports', { body: { time: chosen ?? Date.now() } });
      setExp(e);
      onExported();
      const deadline = Date.now() + 120_000;
      while (alive.current && !finished(e.status) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 1000));
        e = await api<Export>('GET', camPath(id) + '/images/exports/' + encodeURIComponent(e.exportId));
        if (alive.current) setExp(e);
      }
      onExported();
    });
  return (
    <Card title="Export still" class="wide">
      <div class="row">
        <span>
          Moment: <strong>{chosen === null ? 'now' : fmtTime(chosen)}</strong>
        </span>
        <button class="primary" disabled={busy} onClick={start}>
          {busy ? 'Exporting…' : 'Export still'}
        </button>
      </div>
      <ErrorBox error={err} />
      {exp && (
        <div class="export-result" data-export-status={exp.status}>
          <p>
            Export <code>{exp.exportId}</code>: <span class={'badge ' + statusClass(exp.status)}>{exp.status}</span>
            {exp.failureReason ? <span class="bad-text"> {exp.failureReason}</span> : null}
          </p>
          {exp.status === 'completed' && exp.url && <img class="export-img" src={exp.url} alt="Exported still" />}
        </div>
      )}
    </Card>
  );
}

function statusClass(s: string): string {
  return s === 'completed' ? 'ok' : s === 'failed' ? 'bad' : s === 'expired' ? '' : 'pending';
}

function RecentExports({ id, n }: { id: string; n: number }) {
  const list = useAsync((signal) => api<Export[]>('GET', camPath(id) + '/images/exports', { query: { limit: 10, sort: 'desc' }, signal }), [id, n]);
  return (
    <Card title="Recent exports" class="wide">
      <Show a={list}>
        {(es) =>
          es.length === 0 ? (
            <p class="muted">No exports yet.</p>
          ) : (
            <table class="list" aria-label="Exports">
              <thead>
                <tr>
                  <th>Requested</th>
                  <th>Status</th>
                  <th>Image</th>
                  <th>Harvest Files</th>
                </tr>
              </thead>
              <tbody>
                {es.map((e) => (
                  <tr key={e.exportId}>
                    <td class="nowrap small">{fmtTime(e.requestedTime)}</td>
                    <td>
                      <span class={'badge ' + statusClass(e.status)}>{e.status}</span>
                      {e.failureReason ? <div class="bad-text small">{e.failureReason}</div> : null}
                    </td>
                    <td>
                      {e.status === 'completed' && e.url ? (
                        <a href={e.url} target="_blank" rel="noreferrer">
                          <img class="thumb" src={e.url} alt={'Export ' + e.exportId} />
                        </a>
                      ) : null}
                    </td>
                    <td class="small">{e.filePath ? <a href={href('files', ...e.filePath.split('/').filter(Boolean).slice(0, -1))}>{e.filePath}</a> : ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
    </Card>
  );
}

/** exportHint warns when a moment cannot be exported, before asking the API. */
function exportHint(periods: Period[], t: number | null, now: number): string {
  if (t === null || now - t <= LIVE_EXPORT_MS) return '';
  return covered(periods, t, now) ? '' : 'No recording covers this moment: the export will fail.';
}
