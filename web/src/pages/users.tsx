// SAM users and the root account's keys: the user list and creation, the
// operator's default permissions and root auth keys, and a user page with
// description, password (set/change/remove, never shown), auth keys (the
// secret shown once) and the permission document.
import { useEffect, useState } from 'preact/hooks';
import { api, getSession } from '../api';
import { href, navigate } from '../router';
import { ErrorBox, Modal, Page, Show, useAsync, useBusy } from '../ui';
import { Card, ConfirmButton, DL, SecretOnce, fmtSec, inputValue, FormActions } from '../resources/common';

interface AuthKey {
  authKeyId: string;
  createDateTime: number; // UNIX seconds
  lastUsedDateTime?: number;
}

interface User {
  userName: string;
  description: string;
  createDateTime: number; // UNIX seconds
  updateDateTime: number;
  hasPassword: boolean;
  permission: string;
  authKeyList: AuthKey[];
}

const opPath = () => '/v1/operators/' + encodeURIComponent(getSession()?.operatorId || '');
const userPath = (name: string) => opPath() + '/users/' + encodeURIComponent(name);

const example = {
  statements: [
    { effect: 'allow', api: ['Device:*', 'DataEntry:*', 'FileEntry:getFile'] },
    { effect: 'deny', api: 'DataEntry:delete*' },
  ],
};

export function UsersPage({ path }: { path: string[]; query: URLSearchParams }) {
  return path[0] ? <UserDetail key={path[0]} name={path[0]} /> : <UserList />;
}

function UserList() {
  const users = useAsync((signal) => api<User[]>('GET', opPath() + '/users', { signal }), []);
  const [creating, setCreating] = useState(false);
  return (
    <Page
      title="Users"
      actions={
        <button class="primary" onClick={() => setCreating(true)}>
          Create user
        </button>
      }
    >
      <Show a={users}>
        {(us) =>
          us.length === 0 ? (
            <p class="muted">No SAM users yet. Users sign in with a password or auth keys and may call only what their permission document allows.</p>
          ) : (
            <table class="list" aria-label="Users">
              <thead>
                <tr>
                  <th>User</th>
                  <th>Description</th>
                  <th>Password</th>
                  <th>Auth keys</th>
                  <th>Permission</th>
                  <th>Created</th>
                </tr>
              </thead>
              <tbody>
                {us.map((u) => (
                  <tr key={u.userName} class="clickable" onClick={() => navigate(href('users', u.userName))}>
                    <td>
                      <a href={href('users', u.userName)} onClick={(e) => e.stopPropagation()}>
                        {u.userName}
                      </a>
                    </td>
                    <td>{u.description}</td>
                    <td>{u.hasPassword ? <span class="badge ok">set</span> : <span class="badge">none</span>}</td>
                    <td>{u.authKeyList.length}</td>
                    <td>{u.permission ? <span class="badge ok">set</span> : <span class="badge">none</span>}</td>
                    <td class="small muted">{fmtSec(u.createDateTime)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
      <Card title="Default permissions" class="wide">
        <p class="muted small">Applied to every user in addition to their own document. Deny wins over allow.</p>
        <PermissionEditor path={opPath() + '/users/default_permissions'} field="permissions" label="Default permission document" />
      </Card>
      <Card title="Root account auth keys" class="wide">
        <RootKeys />
      </Card>
      {creating && (
        <CreateUser
          onClose={(name) => {
            setCreating(false);
            if (name) navigate(href('users', name));
          }}
        />
      )}
    </Page>
  );
}

function CreateUser({ onClose }: { onClose: (name?: string) => void }) {
  const [name, setName] = useState('');
  const [desc, setDesc] = useState('');
  const [busy, err, run] = useBusy();
  const submit = (e: Event) => {
    e.preventDefault();
    run(async () => {
      await api('POST', userPath(name.trim()), { body: { description: desc } });
      onClose(name.trim());
    });
  };
  return (
    <Modal title="Create user" onClose={() => onClose()}>
      <form onSubmit={submit} aria-label="Create user">
        <label>
          User name
          <input value={name} onInput={(e) => setName(inputValue(e))} required pattern="[A-Za-z0-9_@.+\-]{1,100}" placeholder="camera-bot" autoFocus />
        </label>
        <p class="muted small hint">1–100 of A–Z a–z 0–9 _ @ . + -</p>
        <label>
          Description
          <input value={desc} onInput={(e) => setDesc(inputValue(e))} />
        </label>
        <ErrorBox error={err} />
        <FormActions onCancel={onClose} disabled={busy || !name.trim()} label={'Create'} />
      </form>
    </Modal>
  );
}

function UserDetail({ name }: { name: string }) {
  const user = useAsync((signal) => api<User>('GET', userPath(name), { signal }), [name]);
  return (
    <Page
      title={
        <>
          <a href={href('users')} class="crumb">
            Users
          </a>{' '}
          / {name}
        </>
      }
      actions={
        user.data && (
          <ConfirmButton
            label="Delete user"
            title={`Delete user ${name}?`}
            onConfirm={async () => {
              await api('DELETE', userPath(name));
              navigate(href('users'));
            }}
          >
            <p>The user's auth keys and tokens stop working at once.</p>
          </ConfirmButton>
        )
      }
    >
      <Show a={user}>
        {(u) => (
          <>
            <div class="res-grid">
              <Card title="Details">
                <DL
                  items={[
                    ['User name', <code>{u.userName}</code>],
                    ['Operator', <code>{getSession()?.operatorId}</code>],
                    ['Created', fmtSec(u.createDateTime)],
                    ['Updated', fmtSec(u.updateDateTime)],
                    ['Description', <Description u={u} onSaved={user.reload} />],
                  ]}
                />
              </Card>
              <Card title="Password">
                <Password u={u} onChange={user.reload} />
              </Card>
            </div>
            <Card title="Auth keys" class="wide">
              <AuthKeys keys={u.authKeyList} base={userPath(name) + '/auth_keys'} onChange={user.reload} />
            </Card>
            <Card title="Permission document" class="wide">
              <PermissionEditor path={userPath(name) + '/permission'} field="permission" label="Permission document" onSaved={user.reload} />
            </Card>
          </>
        )}
      </Show>
    </Page>
  );
}

function Description({ u, onSaved }: { u: User; onSaved: () => void }) {
  const [desc, setDesc] = useState(u.description);
  const [busy, err, run] = useBusy();
  useEffect(() => setDesc(u.description), [u.description]);
  return (
    <form
      class="row"
      aria-label="Description"
      onSubmit={(e) => {
        e.preventDefault();
        run(() => api('PUT', userPath(u.userName), { body: { description: desc } }).then(onSaved));
      }}
    >
      <input class="grow" aria-label="Description" value={desc} onInput={(e) => setDesc(inputValue(e))} placeholder="description" />
      <button type="submit" disabled={busy || desc === u.description}>
        Save
      </button>
      <ErrorBox error={err} />
    </form>
  );
}

/** Password sets, changes or removes a user's password; it is never shown or read back. */
function Password({ u, onChange }: { u: User; onChange: () => void }) {
  const [cur, setCur] = useState('');
  const [pw, setPw] = useState('');
  const [msg, setMsg] = useState('');
  const [busy, err, run] = useBusy();
  const submit = (e: Event) => {
    e.preventDefault();
    setMsg('');
    run(async () => {
      if (u.hasPassword) await api('PUT', userPath(u.userName) + '/password', { body: { currentPassword: cur, newPassword: pw } });
      else await api('POST', userPath(u.userName) + '/password', { body: { password: pw } });
      setCur('');
      setPw('');
      setMsg(u.hasPassword ? 'Password changed.' : 'Password set.');
      onChange();
    });
  };
  return (
    <>
      <p>
        {u.hasPassword ? <span class="badge ok">password set</span> : <span class="badge">no password</span>}{' '}
        <span class="muted small">
          {u.hasPassword ? 'Signs in with operator ID, user name and password.' : 'Without a password the user signs in with auth keys only.'}
        </span>
      </p>
      <form onSubmit={submit} aria-label={u.hasPassword ? 'Change password' : 'Set password'}>
        {u.hasPassword && (
          <label>
            Current password
            <input type="password" autoComplete="off" value={cur} onInput={(e) => setCur(inputValue(e))} required />
          </label>
        )}
        <label>
          {u.hasPassword ? 'New password' : 'Password'}
          <input type="password" autoComplete="new-password" value={pw} onInput={(e) => setPw(inputValue(e))} required />
        </label>
        <div class="row">
          <button type="submit" disabled={busy || !pw}>
            {u.hasPassword ? 'Change password' : 'Set password'}
          </button>
          {u.hasPassword && (
            <ConfirmButton
              label="Remove password"
              title={`Remove ${u.userName}'s password?`}
              confirmLabel="Remove"
              onConfirm={async () => {
                await api('DELETE', userPath(u.userName) + '/password');
                setMsg('Password removed.');
                onChange();
              }}
            >
              <p>The user can then sign in with auth keys only, until a new password is set.</p>
            </ConfirmButton>
          )}
          <span class="ok-text small">{msg}</span>
        </div>
        <ErrorBox error={err} />
      </form>
    </>
  );
}

/** AuthKeys lists an account's keys, generates one (secret shown once) and deletes them. */
function AuthKeys({ keys, base, onChange }: { keys: AuthKey[]; base: string; onChange: () => void }) {
  const [made, setMade] = useState<{ authKeyId: string; authKey: string } | null>(null);
  const [busy, err, run] = useBusy();
  return (
    <>
      {keys.length === 0 ? (
        <p class="muted">No auth keys.</p>
      ) : (
        <table class="list" aria-label="Auth keys">
          <thead>
            <tr>
              <th>Auth key ID</th>
              <th>Created</th>
              <th>Last used</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {keys.map((k) => (
              <tr key={k.authKeyId}>
                <td class="mono">{k.authKeyId}</td>
                <td class="small">{fmtSec(k.createDateTime)}</td>
                <td class="small">{k.lastUsedDateTime ? fmtSec(k.lastUsedDateTime) : <span class="muted">never</span>}</td>
                <td class="actions">
                  <ConfirmButton
                    label="Delete"
                    title={`Delete auth key ${k.authKeyId}?`}
                    onConfirm={async () => {
                      await api('DELETE', base + '/' + encodeURIComponent(k.authKeyId));
                      onChange();
                    }}
                  >
                    <p>Programs using this key can no longer log in; tokens already issued stay valid until they expire.</p>
                  </ConfirmButton>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div class="row pager">
        <button
          disabled={busy}
          onClick={() =>
            run(async () => {
              setMade(await api('POST', base));
              onChange();
            })
          }
        >
          Generate auth key
        </button>
      </div>
      <ErrorBox error={err} />
      {made && (
        <Modal title="Auth key generated" onClose={() => setMade(null)}>
          <DL items={[['Auth key ID', <code>{made.authKeyId}</code>]]} />
          <SecretOnce label="Auth key secret" value={made.authKey} />
          <div class="row modal-actions">
            <button class="primary" onClick={() => setMade(null)}>
              Done
            </button>
          </div>
        </Modal>
      )}
    </>
  );
}

function RootKeys() {
  const keys = useAsync((signal) => api<AuthKey[]>('GET', opPath() + '/auth_keys', { signal }), []);
  return (
    <>
      <p class="muted small">Keys of the root account, which may call every operation. The last one cannot be deleted.</p>
      <Show a={keys}>{(ks) => <AuthKeys keys={ks} base={opPath() + '/auth_keys'} onChange={keys.reload} />}</Show>
    </>
  );
}

/** pretty indents a JSON document for editing; anything else stays as it is. */
function pretty(doc: string): string {
  try {
    return JSON.stringify(JSON.parse(doc), null, 2);
  } catch {
    return doc;
  }
}

/**
 * PermissionEditor edits a permission document. The API carries it as a
 * JSON *string* in {field: "…"} and validates it, so the text is sent as
 * typed and the API's problems are shown as they come.
 */
function PermissionEditor({ path, field, label, onSaved }: { path: string; field: string; label: string; onSaved?: () => void }) {
  const doc = useAsync((signal) => api<Record<string, string>>('GET', path, { signal }), [path]);
  const [text, setText] = useState('');
  const [msg, setMsg] = useState('');
  const [busy, err, run] = useBusy();
  const stored = doc.data?.[field] ?? '';
  useEffect(() => setText(pretty(stored)), [stored]);
  const save = () => {
    setMsg('');
    run(async () => {
      await api('PUT', path, { body: { [field]: text } });
      setMsg('Saved.');
      doc.reload();
      onSaved?.();
    });
  };
  if (doc.error) return <ErrorBox error={doc.error} />;
  return (
    <div class="perm-editor">
      <textarea
        class="code perm-text"
        aria-label={label}
        spellcheck={false}
        value={text}
        placeholder={stored ? '' : 'No document: nothing is allowed (beyond the default permissions).'}
        onInput={(e) => {
          setText(inputValue(e));
          setMsg('');
        }}
      />
      <div class="row">
        <button class="primary" disabled={busy || !text.trim()} onClick={save}>
          Save
        </button>
        <button disabled={busy} onClick={() => setText(JSON.stringify(example, null, 2))}>
          Insert example
        </button>
        <button disabled={busy || text === pretty(stored)} onClick={() => setText(pretty(stored))}>
          Revert
        </button>
        {stored && (
          <ConfirmButton
            label="Remove document"
            title="Remove the permission document?"
            confirmLabel="Remove"
            onConfirm={async () => {
              await api('DELETE', path);
              doc.reload();
              onSaved?.();
            }}
          >
            <p>Without a document only the default permissions apply.</p>
          </ConfirmButton>
        )}
        <span class="ok-text small" role="status">
          {msg}
        </span>
      </div>
      <ErrorBox error={err} />
    </div>
  );
}
