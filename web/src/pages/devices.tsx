// Inventory devices: the list (with each device's group and latest Harvest
// Data entry), registration (the secret is shown once), and a device page
// with details, tags, group, secret re-issue and its data, updated live.
import { useEffect, useState } from 'preact/hooks';
import { api, apiWithNext, request } from '../api';
import { live, type DataEntry } from '../live';
import { href, navigate } from '../router';
import { ErrorBox, JSONView, Modal, Page, Show, fmtAgo, fmtTime, useAsync, useBusy } from '../ui';
import { Card, ConfirmButton, DL, LiveDot, SecretOnce, TagsEditor, entryPreview, inputValue, useLiveStatus, FormActions } from '../resources/common';
import { groupName, type Device, type Group } from '../resources/inventory';

const PAGE = 25;
const devicePath = (id: string) => '/v1/devices/' + encodeURIComponent(id);

export function DevicesPage({ path }: { path: string[]; query: URLSearchParams }) {
  return path[0] ? <DeviceDetail key={path[0]} id={path[0]} /> : <DeviceList />;
}

function useGroups() {
  return useAsync((signal) => api<Group[]>('GET', '/v1/groups', { signal }), []);
}

function DeviceList() {
  // keys[i] is the last_evaluated_key of page i (page 0 has none).
  const [keys, setKeys] = useState<string[]>(['']);
  const page = keys.length - 1;
  const list = useAsync(
    (signal) => apiWithNext<Device[]>('/v1/devices', { query: { limit: PAGE, last_evaluated_key: keys[page] }, signal }),
    [keys],
  );
  const groups = useGroups();
  const [registering, setRegistering] = useState(false);
  const byId = new Map((groups.data || []).map((g) => [g.groupId, g]));
  return (
    <Page
      title="Devices"
      actions={
        <button class="primary" onClick={() => setRegistering(true)}>
          Register device
        </button>
      }
    >
      <Show a={list}>
        {({ items, next }) => (
          <>
            {items.length === 0 && page === 0 ? (
              <p class="muted">No devices yet. Register one: it gets an ID and a secret to publish data with.</p>
            ) : (
              <table class="list" aria-label="Devices">
                <thead>
                  <tr>
                    <th>Device</th>
                    <th>Group</th>
                    <th>Latest data</th>
                    <th>Modified</th>
                  </tr>
                </thead>
                <tbody>
                  {items.map((d) => (
                    <DeviceRow key={d.device_id} d={d} group={d.groupId ? byId.get(d.groupId) : undefined} />
                  ))}
                </tbody>
              </table>
            )}
            <div class="row pager">
              <button disabled={page === 0} onClick={() => setKeys(keys.slice(0, -1))}>
                ← Previous
              </button>
              <span class="muted">page {page + 1}</span>
              <button disabled={!next} onClick={() => next && setKeys([...keys, next])}>
                Next →
              </button>
            </div>
          </>
        )}
      </Show>
      {registering && (
        <RegisterDevice
          groups={groups.data || []}
          onClose={() => {
            setRegistering(false);
            list.reload();
          }}
        />
      )}
    </Page>
  );
}

/** DeviceRow shows one device with its newest entry, kept current over /v1/live. */
function DeviceRow({ d, group }: { d: Device; group?: Group }) {
  const [latest, setLatest] = useState<DataEntry | null | undefined>(undefined);
  const [err, setErr] = useState<unknown>(null);
  useEffect(() => {
    let alive = true;
    api<DataEntry[]>('GET', devicePath(d.device_id) + '/data', { query: { limit: 1, sort: 'desc' } }).then(
      (es) => alive && setLatest((cur) => (cur && es[0] && cur.time > es[0].time ? cur : es[0] || cur || null)),
      (e) => alive && setErr(e),
    );
    const stop = live.subscribeData('Device', d.device_id, (e) => setLatest((cur) => (!cur || e.time >= cur.time ? e : cur)));
    return () => {
      alive = false;
      stop();
    };
  }, [d.device_id]);
  return (
    <tr class="clickable" onClick={() => navigate(href('devices', d.device_id))}>
      <td>
        <a href={href('devices', d.device_id)} onClick={(e) => e.stopPropagation()}>
          {d.tags?.name || d.device_id}
        </a>
        {d.tags?.name ? <div class="muted small mono">{d.device_id}</div> : null}
      </td>
      <td>
        {d.groupId ? (
          <a href={href('groups', d.groupId)} onClick={(e) => e.stopPropagation()}>
            {groupName(group, d.groupId)}
          </a>
        ) : (
          <span class="muted">—</span>
        )}
      </td>
      <td class="latest" data-testid="latest-data">
        {err ? (
          <span class="bad-text small">cannot read data</span>
        ) : latest === undefined ? (
          <span class="muted">…</span>
        ) : latest === null ? (
          <span class="muted">no data</span>
        ) : (
          <>
            <span class="small" title={fmtTime(latest.time)}>
              {fmtAgo(latest.time)}
            </span>{' '}
            <code class="preview">{entryPreview(latest, 80)}</code>
          </>
        )}
      </td>
      <td class="small muted">{d.lastModifiedTime ? fmtTime(Date.parse(d.lastModifiedTime)) : ''}</td>
    </tr>
  );
}

function RegisterDevice({ groups, onClose }: { groups: Group[]; onClose: () => void }) {
  const [name, setName] = useState('');
  const [groupId, setGroupId] = useState('');
  const [created, setCreated] = useState<(Device & { deviceSecret: string }) | null>(null);
  const [busy, err, run] = useBusy();
  const submit = (e: Event) => {
    e.preventDefault();
    run(async () => {
      const body: Record<string, unknown> = {};
      if (name.trim()) body.tags = { name: name.trim() };
      if (groupId) body.groupId = groupId;
      setCreated(await api('POST', '/v1/devices', { body }));
    });
  };
  if (created) {
    const publish = `${location.origin}/v1/devices/${created.device_id}/publish`;
    return (
      <Modal title="Device registered" onClose={onClose}>
        <p>
          Device <a href={href('devices', created.device_id)} class="mono">{created.device_id}</a> is registered
          {created.groupId ? '' : ' without a group: put it in a group with Harvest Data enabled before it publishes'}.
        </p>
        <SecretOnce label="Device secret" value={created.deviceSecret}>
          <p class="muted small">The device publishes with it:</p>
          <pre class="json">{`curl -X POST '${publish}' \\\n  -H 'X-Device-Secret: <the secret>' \\\n  -H 'Content-Type: application/json' -d '{"temperature":21.5}'`}</pre>
        </SecretOnce>
        <div class="row modal-actions">
          <button class="primary" onClick={onClose}>
            Done
          </button>
        </div>
      </Modal>
    );
  }
  return (
    <Modal title="Register device" onClose={onClose}>
      <form onSubmit={submit} aria-label="Register device">
        <label>
          Name
          <input value={name} onInput={(e) => setName(inputValue(e))} placeholder="sensor-1" autoFocus />
        </label>
        <label>
          Group
          <select aria-label="Group" value={groupId} onChange={(e) => setGroupId(inputValue(e))}>
            <option value="">(none)</option>
            {groups.map((g) => (
              <option key={g.groupId} value={g.groupId}>
                {groupName(g, g.groupId)}
                {g.configuration?.SoracomHarvest?.enabled ? '' : ' (Harvest Data off)'}
              </option>
            ))}
          </select>
        </label>
        <p class="muted small">A device publishes data only while its group has Harvest Data enabled.</p>
        <ErrorBox error={err} />
        <FormActions onCancel={onClose} disabled={busy} label={busy ? 'Registering…' : 'Register'} />
      </form>
    </Modal>
  );
}

function DeviceDetail({ id }: { id: string }) {
  const dev = useAsync((signal) => api<Device>('GET', devicePath(id), { signal }), [id]);
  const groups = useGroups();
  const d = dev.data;
  return (
    <Page
      title={
        <>
          <a href={href('devices')} class="crumb">
            Devices
          </a>{' '}
          / {d?.tags?.name || id}
        </>
      }
      actions={
        d && (
          <ConfirmButton
            label="Delete device"
            title={`Delete device ${id}?`}
            onConfirm={async () => {
              await api('DELETE', devicePath(id));
              navigate(href('devices'));
            }}
          >
            <p>The device and its secret are removed; its Harvest Data entries stay.</p>
          </ConfirmButton>
        )
      }
    >
      <Show a={dev}>
        {(d) => (
          <div class="res-grid">
            <Card title="Details">
              <DL
                items={[
                  ['Device ID', <code>{d.device_id}</code>],
                  ['Manufacturer', d.manufacturer],
                  ['Model', d.modelNumber],
                  ['Serial', d.serialNumber],
                  ['Firmware', d.firmwareVersion],
                  ['Endpoint', d.endpoint],
                  ['IP address', d.ipAddress],
                  ['Modified', d.lastModifiedTime ? fmtTime(Date.parse(d.lastModifiedTime)) : ''],
                ]}
              />
            </Card>
            <Card title="Group">
              <GroupPicker d={d} groups={groups.data || []} onChange={dev.reload} />
            </Card>
            <Card title="Tags">
              <TagsEditor
                tags={d.tags}
                onPut={async (n, v) => {
                  await api('PUT', devicePath(id) + '/tags', { body: [{ tagName: n, tagValue: v }] });
                  dev.reload();
                }}
                onDelete={async (n) => {
                  await api('DELETE', devicePath(id) + '/tags/' + encodeURIComponent(n));
                  dev.reload();
                }}
              />
            </Card>
            <Card title="Device secret">
              <NewSecret id={id} />
            </Card>
          </div>
        )}
      </Show>
      {d && <DeviceData id={id} />}
      {d && <PublishTest id={id} />}
    </Page>
  );
}

function GroupPicker({ d, groups, onChange }: { d: Device; groups: Group[]; onChange: () => void }) {
  const [sel, setSel] = useState(d.groupId);
  const [busy, err, run] = useBusy();
  const cur = groups.find((g) => g.groupId === d.groupId);
  useEffect(() => setSel(d.groupId), [d.groupId]);
  return (
    <>
      <p>
        {d.groupId ? (
          <>
            In <a href={href('groups', d.groupId)}>{groupName(cur, d.groupId)}</a>
            {cur && !cur.configuration?.SoracomHarvest?.enabled ? <span class="badge bad"> Harvest Data off</span> : null}
          </>
        ) : (
          <span class="muted">Not in a group: publishes are refused (HRV0001) until it is in one with Harvest Data enabled.</span>
        )}
      </p>
      <div class="row">
        <select aria-label="Group" value={sel} onChange={(e) => setSel(inputValue(e))}>
          <option value="">(none)</option>
          {groups.map((g) => (
            <option key={g.groupId} value={g.groupId}>
              {groupName(g, g.groupId)}
            </option>
          ))}
        </select>
        <button
          disabled={busy || !sel || sel === d.groupId}
          onClick={() => run(() => api('POST', devicePath(d.device_id) + '/set_group', { body: { groupId: sel } }).then(onChange))}
        >
          Set group
        </button>
        <button disabled={busy || !d.groupId} onClick={() => run(() => api('POST', devicePath(d.device_id) + '/unset_group').then(onChange))}>
          Remove from group
        </button>
      </div>
      <ErrorBox error={err} />
    </>
  );
}

function NewSecret({ id }: { id: string }) {
  const [secret, setSecret] = useState('');
  return (
    <>
      <p class="muted small">Secrets are stored hashed and cannot be shown again. A new one replaces the old at once.</p>
      {secret ? (
        <SecretOnce label="New device secret" value={secret} />
      ) : (
        <ConfirmButton
          label="Issue new secret"
          title="Issue a new device secret?"
          confirmLabel="Issue new secret"
          onConfirm={async () => setSecret((await api<{ deviceSecret: string }>('POST', devicePath(id) + '/secret')).deviceSecret)}
        >
          <p>The current secret stops working immediately; the device must be given the new one.</p>
        </ConfirmButton>
      )}
    </>
  );
}

/** mergeEntries adds entries (de-duplicated by time) and keeps newest first. */
function mergeEntries(cur: DataEntry[], add: DataEntry[]): DataEntry[] {
  const byTime = new Map(cur.map((e) => [e.time, e]));
  for (const e of add) byTime.set(e.time, e);
  return [...byTime.values()].sort((a, b) => b.time - a.time);
}

/**
 * DeviceData lists the newest entries and adds each new one as the server
 * pushes it. Whenever the subscription is (re)confirmed the first page is
 * read again, so entries stored while it was down are not missed.
 */
function DeviceData({ id }: { id: string }) {
  const [entries, setEntries] = useState<DataEntry[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [fresh, setFresh] = useState<Set<number>>(new Set());
  const [err, setErr] = useState<unknown>(null);
  const [loaded, setLoaded] = useState(false);
  const status = useLiveStatus();
  const page = (key?: string) => apiWithNext<DataEntry[]>(devicePath(id) + '/data', { query: { limit: 20, sort: 'desc', last_evaluated_key: key } });
  // Confirmed subscriptions so far: each one (again after a reconnect)
  // re-reads the first page, as pushes only cover what comes after it.
  const [subscribed, setSubscribed] = useState(0);
  useEffect(() => {
    return live.subscribeData(
      'Device',
      id,
      (e) => {
        setEntries((cur) => mergeEntries(cur, [e]));
        setFresh((s) => new Set(s).add(e.time));
      },
      () => setSubscribed((n) => n + 1),
    );
  }, [id]);
  useEffect(() => {
    let alive = true;
    page().then(
      (r) => {
        if (!alive) return;
        setEntries((cur) => mergeEntries(cur, r.items));
        setNext((n) => (loaded ? n : r.next));
        setLoaded(true);
        setErr(null);
      },
      (e) => alive && setErr(e),
    );
    return () => {
      alive = false;
    };
  }, [id, subscribed]);
  const [busy, moreErr, run] = useBusy();
  const older = () =>
    run(async () => {
      const r = await page(next || undefined);
      setEntries((cur) => mergeEntries(cur, r.items));
      setNext(r.next);
    });
  return (
    <Card
      title="Data"
      actions={
        <span data-subscribed={subscribed > 0 ? 'yes' : 'no'}>
          <LiveDot status={status} />
        </span>
      }
      class="wide"
    >
      <ErrorBox error={err} />
      {!loaded && !err ? (
        <p class="muted">Loading…</p>
      ) : entries.length === 0 ? (
        <p class="muted">No data yet. New entries appear here as the device publishes them.</p>
      ) : (
        <table class="list" aria-label="Data entries">
          <thead>
            <tr>
              <th>Time</th>
              <th>Type</th>
              <th>Content</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr key={e.time} class={fresh.has(e.time) ? 'fresh' : ''} data-time={e.time}>
                <td class="nowrap">{fmtTime(e.time)}</td>
                <td class="small muted">{e.contentType}</td>
                <td class="grow">
                  <details>
                    <summary>
                      <code class="preview">{entryPreview(e)}</code>
                    </summary>
                    <JSONView value={e.contentEncoding === 'base64' ? e.content : entryJSON(e)} />
                  </details>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {next && (
        <div class="row pager">
          <button disabled={busy} onClick={older}>
            Older entries
          </button>
        </div>
      )}
      <ErrorBox error={moreErr} />
    </Card>
  );
}

function entryJSON(e: DataEntry): unknown {
  if (typeof e.content !== 'string') return e.content;
  try {
    return JSON.parse(e.content);
  } catch {
    return e.content;
  }
}

/** PublishTest sends a payload as the device would, given its secret. */
function PublishTest({ id }: { id: string }) {
  const [secret, setSecret] = useState('');
  const [body, setBody] = useState('{"temperature": 21.5}');
  const [done, setDone] = useState('');
  const [busy, err, run] = useBusy();
  const send = (e: Event) => {
    e.preventDefault();
    setDone('');
    run(async () => {
      let ct = 'text/plain';
      try {
        JSON.parse(body);
        ct = 'application/json';
      } catch {
        /* sent as text */
      }
      await request('POST', devicePath(id) + '/publish', { body, contentType: ct, headers: { 'X-Device-Secret': secret } });
      setDone('Published ' + fmtTime(Date.now()));
    });
  };
  return (
    <details class="card res-card publish-test">
      <summary>Publish test data as this device</summary>
      <form onSubmit={send} aria-label="Publish test data">
        <label>
          Device secret
          <input type="password" autoComplete="off" value={secret} onInput={(e) => setSecret(inputValue(e))} required />
        </label>
        <label>
          Payload (JSON or text)
          <textarea class="code small-area" value={body} onInput={(e) => setBody(inputValue(e))} />
        </label>
        <div class="row">
          <button type="submit" disabled={busy || !secret}>
            Publish
          </button>
          <span class="ok-text small">{done}</span>
        </div>
        <ErrorBox error={err} />
      </form>
    </details>
  );
}
