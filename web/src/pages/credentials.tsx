// Credentials store: the list (type, description, times — the API never
// returns values), create/replace with write-only value fields per type,
// and delete. Secret inputs are cleared as soon as a save succeeds.
import { useState } from 'preact/hooks';
import { api } from '../api';
import { ErrorBox, Page, Show, useAsync, useBusy } from '../ui';
import { Card, ConfirmButton, fmtSec, inputValue } from '../resources/common';

interface Credential {
  credentialsId: string;
  type: string;
  description: string;
  createDateTime: number; // UNIX seconds
  updateDateTime: number;
  lastUsedDateTime: number;
}

interface FieldSpec {
  name: string;
  label: string;
  kind: 'text' | 'secret' | 'pem';
  optional?: boolean;
}

/**
 * The types and fields the store accepts (internal/credentials typeFields;
 * the API has no operation listing them). Identifiers are plain inputs,
 * secrets password inputs, PEM blocks text areas — all write-only.
 */
const types: Record<string, { label: string; fields: FieldSpec[] }> = {
  'username-password-credentials': {
    label: 'User name and password',
    fields: [
      { name: 'username', label: 'User name', kind: 'text' },
      { name: 'password', label: 'Password', kind: 'secret' },
    ],
  },
  'api-token-credentials': { label: 'API token', fields: [{ name: 'token', label: 'Token', kind: 'secret' }] },
  'slack-incoming-webhook': { label: 'Slack Incoming Webhook', fields: [{ name: 'url', label: 'Webhook URL', kind: 'secret' }] },
  'slack-signing-secret': { label: 'Slack app signing secret', fields: [{ name: 'signingSecret', label: 'Signing secret', kind: 'secret' }] },
  'line-channel': {
    label: 'LINE Messaging API channel',
    fields: [
      { name: 'channelSecret', label: 'Channel secret', kind: 'secret' },
      { name: 'channelAccessToken', label: 'Channel access token', kind: 'secret' },
    ],
  },
  psk: { label: 'Pre-shared key', fields: [{ name: 'key', label: 'Key', kind: 'secret' }] },
  'aws-credentials': {
    label: 'AWS access key',
    fields: [
      { name: 'accessKeyId', label: 'Access key ID', kind: 'text' },
      { name: 'secretAccessKey', label: 'Secret access key', kind: 'secret' },
    ],
  },
  'azure-credentials': {
    label: 'Azure shared access key',
    fields: [
      { name: 'policyName', label: 'Policy name', kind: 'text' },
      { name: 'key', label: 'Key', kind: 'secret' },
    ],
  },
  'azure-storage': {
    label: 'Azure Storage account (Blob, Data Lake Gen2): name with key or SAS token, or a connection string',
    fields: [
      { name: 'accountName', label: 'Account name', kind: 'text', optional: true },
      { name: 'accountKey', label: 'Account key', kind: 'secret', optional: true },
      { name: 'sasToken', label: 'SAS token', kind: 'secret', optional: true },
      { name: 'connectionString', label: 'Connection string', kind: 'secret', optional: true },
    ],
  },
  x509: {
    label: 'X.509 certificate and key',
    fields: [
      { name: 'cert', label: 'Certificate (PEM)', kind: 'pem' },
      { name: 'key', label: 'Private key (PEM)', kind: 'pem' },
      { name: 'ca', label: 'CA certificate (PEM)', kind: 'pem', optional: true },
    ],
  },
  'private-key-pem': { label: 'Private key (PEM)', fields: [{ name: 'key', label: 'Private key (PEM)', kind: 'pem' }] },
};

export function CredentialsPage(_: { path: string[]; query: URLSearchParams }) {
  const list = useAsync((signal) => api<Credential[]>('GET', '/v1/credentials', { signal }), []);
  // replacing holds the entry being replaced; the form then keeps its ID and type.
  const [replacing, setReplacing] = useState<Credential | null>(null);
  const [notice, setNotice] = useState('');
  return (
    <Page title="Credentials">
      <p class="muted">
        Secrets that flows and cameras use by reference. Values are encrypted at rest and never shown again — not here, not by the API. To change a
        value, replace the credential.
      </p>
      <Show a={list}>
        {(cs) =>
          cs.length === 0 ? (
            <p class="muted">No credentials yet.</p>
          ) : (
            <table class="list" aria-label="Credentials">
              <thead>
                <tr>
                  <th>ID</th>
                  <th>Type</th>
                  <th>Description</th>
                  <th>Created</th>
                  <th>Updated</th>
                  <th>Last used</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {cs.map((c) => (
                  <tr key={c.credentialsId} data-credential={c.credentialsId}>
                    <td class="mono">{c.credentialsId}</td>
                    <td>
                      <span class="badge">{c.type}</span>
                    </td>
                    <td>{c.description}</td>
                    <td class="small nowrap">{fmtSec(c.createDateTime)}</td>
                    <td class="small nowrap">{fmtSec(c.updateDateTime)}</td>
                    <td class="small nowrap">{c.lastUsedDateTime ? fmtSec(c.lastUsedDateTime) : <span class="muted">never</span>}</td>
                    <td class="actions">
                      <div class="row">
                        <button
                          onClick={() => {
                            setNotice('');
                            setReplacing(c);
                          }}
                        >
                          Replace
                        </button>
                        <ConfirmButton
                          label="Delete"
                          title={`Delete credential ${c.credentialsId}?`}
                          onConfirm={async () => {
                            await api('DELETE', '/v1/credentials/' + encodeURIComponent(c.credentialsId));
                            if (replacing?.credentialsId === c.credentialsId) setReplacing(null);
                            list.reload();
                          }}
                        >
                          <p>Flows and cameras that refer to it will fail until it is created again.</p>
                        </ConfirmButton>
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
      {notice && (
        <p class="ok-text" role="status">
          {notice}
        </p>
      )}
      <CredentialForm
        key={replacing?.credentialsId || ''}
        replacing={replacing}
        onCancel={() => setReplacing(null)}
        onSaved={(m) => {
          setNotice(m);
          setReplacing(null);
          list.reload();
        }}
      />
    </Page>
  );
}

/**
 * CredentialForm creates a credential, or replaces one (PUT needs every
 * value again, since none can be read back). The values live only in this
 * form's state and are dropped once the API has them.
 */
function CredentialForm({ replacing, onCancel, onSaved }: { replacing: Credential | null; onCancel: () => void; onSaved: (notice: string) => void }) {
  const [id, setId] = useState(replacing?.credentialsId || '');
  const [type, setType] = useState(replacing?.type && types[replacing.type] ? replacing.type : 'username-password-credentials');
  const [desc, setDesc] = useState(replacing?.description || '');
  const [values, setValues] = useState<Record<string, string>>({});
  const [busy, err, run] = useBusy();
  const spec = types[type];
  const submit = (e: Event) => {
    e.preventDefault();
    run(async () => {
      const credentials: Record<string, string> = {};
      for (const f of spec.fields) if (values[f.name] || !f.optional) credentials[f.name] = values[f.name] || '';
      const path = '/v1/credentials/' + encodeURIComponent(id.trim());
      await api(replacing ? 'PUT' : 'POST', path, { body: { type, description: desc, credentials } });
      setValues({});
      setId('');
      setDesc('');
      onSaved(`${replacing ? 'Replaced' : 'Created'} ${id.trim()}. Its values are stored encrypted and will not be shown again.`);
    });
  };
  const setValue = (name: string) => (e: Event) => setValues({ ...values, [name]: inputValue(e) });
  return (
    <Card title={replacing ? `Replace ${replacing.credentialsId}` : 'New credential'} class="wide cred-form">
      <form onSubmit={submit} aria-label={replacing ? 'Replace credential' : 'New credential'} autoComplete="off">
        <div class="form-grid">
          <label>
            ID
            <input value={id} onInput={(e) => setId(inputValue(e))} required disabled={!!replacing} pattern="[A-Za-z0-9_.\-]{1,100}" placeholder="lobby-cam" />
          </label>
          <label>
            Type
            <select
              aria-label="Type"
              value={type}
              onChange={(e) => {
                setType(inputValue(e));
                setValues({});
              }}
            >
              {Object.entries(types).map(([t, s]) => (
                <option key={t} value={t}>
                  {t} — {s.label}
                </option>
              ))}
            </select>
          </label>
          <label class="span2">
            Description
            <input value={desc} onInput={(e) => setDesc(inputValue(e))} placeholder="what it is for" />
          </label>
          {spec.fields.map((f) => (
            <label key={type + f.name} class={f.kind === 'pem' ? 'span2' : ''}>
              <span>
                {f.label}
                {f.optional ? <span class="muted small"> (optional)</span> : null}
              </span>
              {f.kind === 'pem' ? (
                <textarea class="code pem" value={values[f.name] || ''} onInput={setValue(f.name)} required={!f.optional} spellcheck={false} placeholder="-----BEGIN …-----" />
              ) : (
                <input
                  type={f.kind === 'secret' ? 'password' : 'text'}
                  autoComplete={f.kind === 'secret' ? 'new-password' : 'off'}
                  value={values[f.name] || ''}
                  onInput={setValue(f.name)}
                  required={!f.optional}
                />
              )}
            </label>
          ))}
        </div>
        <p class="muted small">Values are write-only: {replacing ? 'enter every value again to replace them.' : 'after saving they cannot be read back.'}</p>
        <div class="row">
          <button class="primary" type="submit" disabled={busy}>
            {replacing ? 'Replace' : 'Create'}
          </button>
          {replacing && (
            <button type="button" onClick={onCancel}>
              Cancel
            </button>
          )}
        </div>
        <ErrorBox error={err} />
      </form>
    </Card>
  );
}
