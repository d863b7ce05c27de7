// Live board of device shadows (the call-button system's staff board, seed
// 003): one card per thing with the state its shadow reports. The state is
// read over HTTP on load, then kept current over MQTT over WebSocket (/mqtt,
// the same topics a device or the seed's Paho page uses), so no "ping"
// publish is needed to learn the current state. ?kiosk=1 shows it
// full-screen on a monitor.
import type { MqttClient } from 'mqtt';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, getSession } from '../api';
import { ErrorBox, fmtTime, Page } from '../ui';
import './boards.css';

/** Shadow is what the board needs of a classic shadow document. */
interface Shadow {
  thing: string;
  reported: Record<string, any>;
  desired: Record<string, any>;
  version: number;
  timestamp: number; // seconds, as AWS writes it
}

// Known states of the call-button app, with the seed's words.
const labels: Record<string, string> = {
  idle: '呼び出しOK! (idle)',
  calling: '呼び出し中... (calling)',
  running: '現場急行中! (running)',
  dnd: '取り込み中 (do not disturb)',
  unavailable: '不在 (unavailable)',
};

function fromDocument(thing: string, doc: any): Shadow {
  return {
    thing,
    reported: doc?.state?.reported || {},
    desired: doc?.state?.desired || {},
    version: doc?.version || 0,
    timestamp: doc?.timestamp || 0,
  };
}

// $aws/things/<thing>/shadow/update/documents (classic shadows only).
const docTopic = /^\$aws\/things\/([^/]+)\/shadow\/update\/documents$/;

type Conn = 'connecting' | 'live' | 'offline';

export function BoardsPage({ query }: { path: string[]; query: URLSearchParams }) {
  const prefix = query.get('prefix') || '';
  const field = query.get('field') || 'state';
  const title = query.get('title') || 'Staff board';
  const [shadows, setShadows] = useState<Record<string, Shadow>>({});
  const [err, setErr] = useState<unknown>(null);
  const [conn, setConn] = useState<Conn>('connecting');

  useEffect(() => {
    let closed = false;
    let client: MqttClient | null = null;
    const put = (s: Shadow) => {
      if (!s.thing.startsWith(prefix)) return;
      setShadows((cur) => (cur[s.thing] && cur[s.thing].version > s.version ? cur : { ...cur, [s.thing]: s }));
    };
    // Read everything once over HTTP; a document pushed meanwhile wins by version.
    const load = async () => {
      const res = await api<{ things: { thingName: string }[] } | { thingName: string }[]>('GET', '/v1/things');
      const names = (Array.isArray(res) ? res : res.things || []).map((t: any) => t.thingName || t.name || t).filter((n: string) => n.startsWith(prefix));
      await Promise.all(
        names.map(async (n: string) => {
          try {
            put(fromDocument(n, await api('GET', `/v1/things/${encodeURIComponent(n)}/shadow`)));
          } catch {
            /* a thing with only named shadows */
          }
        }),
      );
    };
    load().catch((e) => !closed && setErr(e));

    const s = getSession();
    // mqtt.js is loaded only here (its own chunk; most pages never need it).
    import('mqtt').then(({ default: mqtt }) => {
      if (closed || !s) return;
      const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/mqtt';
      client = mqtt.connect(url, {
        username: s.apiKey,
        password: s.token,
        clientId: 'console-' + Math.random().toString(36).slice(2, 12),
        clean: true,
        protocolVersion: 4, // MQTT 3.1.1: what the embedded NATS speaks
        reconnectPeriod: 2000,
        connectTimeout: 10_000,
        // Native timers: the default worker timers come from a blob: URL,
        // which the console's CSP does not allow for scripts.
        timerVariant: 'native',
      });
      client.on('connect', () => {
        client!.subscribe('$aws/things/+/shadow/update/documents', { qos: 0 }, (e) => {
          if (e) setErr(e);
          else {
            setConn('live');
            // Anything that changed while (re)connecting.
            load().catch(() => undefined);
          }
        });
      });
      client.on('close', () => !closed && setConn('offline'));
      client.on('error', (e) => !closed && setErr(e));
      client.on('message', (topic, payload) => {
        const m = docTopic.exec(topic);
        if (!m) return;
        try {
          const d = JSON.parse(new TextDecoder().decode(payload));
          put(fromDocument(decodeURIComponent(m[1]), { ...d.current, timestamp: d.timestamp }));
        } catch {
          /* not a shadow document */
        }
      });
    }, (e) => setErr(e));
    return () => {
      closed = true;
      client?.end(true);
    };
  }, [prefix]);

  // Things whose shadow does not report the field (e.g. the registry) are not people.
  const list = useMemo(() => Object.values(shadows).filter((s) => s.reported[field] !== undefined).sort((a, b) => (a.reported.name || a.thing).localeCompare(b.reported.name || b.thing)), [shadows, field]);
  const kiosk = query.get('kiosk') === '1';
  return (
    <Page
      title={title}
      actions={
        <>
          <span class={'board-conn ' + conn} data-mqtt={conn} title="MQTT over WebSocket (/mqtt)">
            {conn === 'live' ? '● MQTT live' : conn === 'connecting' ? '○ connecting' : '○ reconnecting'}
          </span>
          {!kiosk && <a href={location.hash + (location.hash.includes('?') ? '&' : '?') + 'kiosk=1'}>Full screen</a>}
        </>
      }
    >
      <ErrorBox error={err} />
      {list.length === 0 && (
        <p class="muted">
          No things whose shadow reports <code>{field}</code>
          {prefix ? ` starting with "${prefix}"` : ''} yet.
        </p>
      )}
      <div class={'board' + (kiosk ? ' big' : '')}>
        {list.map((s) => {
          const v = String(s.reported[field]);
          return (
            <div key={s.thing} class={'board-card state-' + v.replace(/[^a-z0-9_-]/gi, '')} data-thing={s.thing} data-state={v}>
              <div class="board-name">{s.reported.name || s.thing}</div>
              <div class="board-state" key={s.version}>
                {labels[v] || v}
              </div>
              <div class="board-meta">
                {s.thing} · v{s.version}
                {s.timestamp ? ' · ' + fmtTime(s.timestamp * 1000) : ''}
              </div>
            </div>
          );
        })}
      </div>
    </Page>
  );
}
