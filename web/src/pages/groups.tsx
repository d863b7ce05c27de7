// Groups: the list and creation (name, Harvest switches), and a group page
// with its configuration switches, tags, member devices and SIMs, and
// deletion (refused by the API while members remain).
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api } from '../api';
import { href, navigate } from '../router';
import { ErrorBox, JSONView, Modal, Page, Show, fmtTime, useAsync, useBusy } from '../ui';
import { Card, ConfirmButton, DL, TagsEditor, inputValue, FormActions } from '../resources/common';
import { groupName, type Device, type Group, type Sim } from '../resources/inventory';

/** The namespaces whose "enabled" switch the console offers. */
const switches: { ns: string; label: string; help: string }[] = [
  { ns: 'SoracomHarvest', label: 'Harvest Data', help: 'members may publish data (POST /v1/devices/{id}/publish)' },
  { ns: 'SoracomHarvestFiles', label: 'Harvest Files', help: 'members may store files' },
];

const groupPath = (id: string) => '/v1/groups/' + encodeURIComponent(id);

export function GroupsPage({ path }: { path: string[]; query: URLSearchParams }) {
  return path[0] ? <GroupDetail key={path[0]} id={path[0]} /> : <GroupList />;
}

function enabled(g: Group, ns: string): boolean {
  return g.configuration?.[ns]?.enabled === true;
}

/**
 * useMembers reads every device and SIM and keeps those in a group: the
 * list operations filter by tag only, and without a limit they answer the
 * whole registry in one call.
 */
function useMembers() {
  return useAsync(
    async (signal) => {
      const [devices, sims] = await Promise.all([api<Device[]>('GET', '/v1/devices', { signal }), api<Sim[]>('GET', '/v1/sims', { signal })]);
      return { devices, sims };
    },
    [],
  );
}

function GroupList() {
  const groups = useAsync((signal) => api<Group[]>('GET', '/v1/groups', { signal }), []);
  const members = useMembers();
  const [creating, setCreating] = useState(false);
  const count = (id: string) =>
    members.data ? members.data.devices.filter((d) => d.groupId === id).length + members.data.sims.filter((s) => s.groupId === id).length : undefined;
  return (
    <Page
      title="Groups"
      actions={
        <button class="primary" onClick={() => setCreating(true)}>
          Create group
        </button>
      }
    >
      <Show a={groups}>
        {(gs) =>
          gs.length === 0 ? (
            <p class="muted">No groups yet. A group switches Harvest Data and Files on for the devices in it.</p>
          ) : (
            <table class="list" aria-label="Groups">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Harvest Data</th>
                  <th>Harvest Files</th>
                  <th>Members</th>
                  <th>Created</th>
                </tr>
              </thead>
              <tbody>
                {gs.map((g) => (
                  <tr key={g.groupId} class="clickable" onClick={() => navigate(href('groups', g.groupId))}>
                    <td>
                      <a href={href('groups', g.groupId)} onClick={(e) => e.stopPropagation()}>
                        {groupName(g, g.groupId)}
                      </a>
                      <div class="muted small mono">{g.groupId}</div>
                    </td>
                    {switches.map((s) => (
                      <td key={s.ns}>
                        <OnOff on={enabled(g, s.ns)} />
                      </td>
                    ))}
                    <td>{count(g.groupId) ?? '…'}</td>
                    <td class="small muted">{fmtTime(g.createdTime)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
      {creating && (
        <CreateGroup
          onClose={(id) => {
            setCreating(false);
            if (id) navigate(href('groups', id));
            else groups.reload();
          }}
        />
      )}
    </Page>
  );
}

function OnOff({ on }: { on: boolean }) {
  return <span class={'badge ' + (on ? 'ok' : '')}>{on ? 'on' : 'off'}</span>;
}

function CreateGroup({ onClose }: { onClose: (id?: string) => void }) {
  const [name, setName] = useState('');
  const [on, setOn] = useState<Record<string, boolean>>({ SoracomHarvest: true });
  const [busy, err, run] = useBusy();
  const submit = (e: Event) => {
    e.preventDefault();
    run(async () => {
      const configuration: Record<string, { enabled: boolean }> = {};
      for (const s of switches) if (on[s.ns]) configuration[s.ns] = { enabled: true };
      const g = await api<Group>('POST', '/v1/groups', { body: { tags: { name: name.trim() }, configuration } });
      onClose(g.groupId);
    });
  };
  return (
    <Modal title="Create group" onClose={() => onClose()}>
      <form onSubmit={submit} aria-label="Create group">
        <label>
          Name
          <input value={name} onInput={(e) => setName(inputValue(e))} required autoFocus placeholder="lab" />
        </label>
        {switches.map((s) => (
          <label class="inline" key={s.ns}>
            <input type="checkbox" checked={!!on[s.ns]} onChange={(e) => setOn({ ...on, [s.ns]: (e.target as HTMLInputElement).checked })} />
            {s.label} <span class="muted small">— {s.help}</span>
          </label>
        ))}
        <ErrorBox error={err} />
        <FormActions onCancel={onClose} disabled={busy || !name.trim()} label={'Create'} />
      </form>
    </Modal>
  );
}

function GroupDetail({ id }: { id: string }) {
  const group = useAsync((signal) => api<Group>('GET', groupPath(id), { signal }), [id]);
  const members = useMembers();
  const g = group.data;
  const devices = members.data?.devices.filter((d) => d.groupId === id) || [];
  const sims = members.data?.sims.filter((s) => s.groupId === id) || [];
  return (
    <Page
      title={
        <>
          <a href={href('groups')} class="crumb">
            Groups
          </a>{' '}
          / {g ? groupName(g, id) : id}
        </>
      }
      actions={
        g && (
          <ConfirmButton
            label="Delete group"
            title={`Delete group ${groupName(g, id)}?`}
            onConfirm={async () => {
              await api('DELETE', groupPath(id));
              navigate(href('groups'));
            }}
            explain={(e) =>
              e instanceof ApiError && e.status === 400
                ? 'A group cannot be deleted while devices or SIMs are in it. Remove them from the group (below, or on each device page) and try again.'
                : null
            }
          >
            <p>
              {devices.length + sims.length > 0
                ? `It still has ${devices.length + sims.length} member(s); the API refuses to delete it until they leave the group.`
                : 'The group has no members.'}
            </p>
          </ConfirmButton>
        )
      }
    >
      <Show a={group}>
        {(g) => (
          <div class="res-grid">
            <Card title="Details">
              <DL
                items={[
                  ['Group ID', <code>{g.groupId}</code>],
                  ['Created', fmtTime(g.createdTime)],
                  ['Modified', fmtTime(g.lastModifiedTime)],
                ]}
              />
            </Card>
            <Card title="Configuration">
              {switches.map((s) => (
                <Switch key={s.ns} g={g} ns={s.ns} label={s.label} help={s.help} onChange={group.reload} />
              ))}
              <details>
                <summary>All configuration</summary>
                <JSONView value={g.configuration} />
              </details>
            </Card>
            <Card title="Tags">
              <TagsEditor
                tags={g.tags}
                onPut={async (n, v) => {
                  await api('PUT', groupPath(id) + '/tags', { body: [{ tagName: n, tagValue: v }] });
                  group.reload();
                }}
                onDelete={async (n) => {
                  await api('DELETE', groupPath(id) + '/tags/' + encodeURIComponent(n));
                  group.reload();
                }}
              />
            </Card>
          </div>
        )}
      </Show>
      {g && (
        <Card title={`Members (${devices.length + sims.length})`} class="wide">
          <Show a={members}>{() => <Members devices={devices} sims={sims} onChange={members.reload} />}</Show>
        </Card>
      )}
    </Page>
  );
}

function Switch({ g, ns, label, help, onChange }: { g: Group; ns: string; label: string; help: string; onChange: () => void }) {
  const [busy, err, run] = useBusy();
  const on = enabled(g, ns);
  // The box shows the wanted state until the reloaded group confirms it.
  const [want, setWant] = useState<boolean | null>(null);
  useEffect(() => setWant(null), [on]);
  return (
    <div class="switch-row">
      <label class="inline">
        <input
          type="checkbox"
          checked={want ?? on}
          disabled={busy}
          onChange={(e) => {
            const v = (e.target as HTMLInputElement).checked;
            setWant(v);
            run(async () => {
              try {
                await api('PUT', groupPath(g.groupId) + '/configuration/' + ns, { body: [{ key: 'enabled', value: v }] });
              } catch (e) {
                setWant(null);
                throw e;
              }
              onChange();
            });
          }}
        />
        {label} enabled <span class="muted small">— {help}</span>
      </label>
      <ErrorBox error={err} />
    </div>
  );
}

function Members({ devices, sims, onChange }: { devices: Device[]; sims: Sim[]; onChange: () => void }) {
  const [busy, err, run] = useBusy();
  if (devices.length + sims.length === 0) return <p class="muted">No devices or SIMs are in this group. Put a device in it from its page.</p>;
  const unset = (path: string) => run(() => api('POST', path + '/unset_group').then(onChange));
  return (
    <>
      <table class="list" aria-label="Members">
        <thead>
          <tr>
            <th>Kind</th>
            <th>Name</th>
            <th>ID</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {devices.map((d) => (
            <tr key={'d' + d.device_id}>
              <td>device</td>
              <td>
                <a href={href('devices', d.device_id)}>{d.tags?.name || d.device_id}</a>
              </td>
              <td class="mono small">{d.device_id}</td>
              <td class="actions">
                <button class="link" disabled={busy} onClick={() => unset('/v1/devices/' + encodeURIComponent(d.device_id))}>
                  Remove from group
                </button>
              </td>
            </tr>
          ))}
          {sims.map((s) => (
            <tr key={'s' + s.simId}>
              <td>SIM</td>
              <td>{s.name || s.simId}</td>
              <td class="mono small">{s.simId}</td>
              <td class="actions">
                <button class="link" disabled={busy} onClick={() => unset('/v1/sims/' + encodeURIComponent(s.simId))}>
                  Remove from group
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <ErrorBox error={err} />
    </>
  );
}
