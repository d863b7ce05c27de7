// Editing an app's YAML: the editor (line numbers, problem lines marked),
// server-side validation (POST /v1/flux/validate), saving (PUT), creating
// (POST) and deleting an app.
import { useRef, useState } from 'preact/hooks';
import { api, ApiError } from '../api';
import { href, navigate } from '../router';
import { ErrorBox, Modal, Show, useAsync, useBusy } from '../ui';
import { appPath, appsPath, validatePath, type AppView } from './model';

interface Problem {
  line: number;
  column: number;
  message: string;
}

const YAML = 'application/yaml';

const template = `name: my-app
description: What this app does.
channels:
  in:
    # no sources: fed by API messages and test runs
    actions:
      - name: store
        harvest: {resourceId: my-device}
`;

/** problemsOf returns the line:column problems an API error carries. */
function problemsOf(e: unknown): Problem[] {
  return e instanceof ApiError && Array.isArray(e.body?.problems) ? e.body.problems : [];
}

export function YamlEditor({ value, onInput, problems, label }: { value: string; onInput: (v: string) => void; problems: Problem[]; label: string }) {
  const gutter = useRef<HTMLDivElement>(null);
  const bad = new Set(problems.map((p) => p.line));
  const lines = value.split('\n').length;
  return (
    <div class="yaml-editor">
      <div class="gutter" ref={gutter} aria-hidden="true">
        {Array.from({ length: lines }, (_, i) => (
          <div key={i} class={bad.has(i + 1) ? 'bad' : ''}>
            {i + 1}
          </div>
        ))}
      </div>
      <textarea
        class="code"
        aria-label={label}
        spellcheck={false}
        wrap="off"
        value={value}
        onInput={(e) => onInput((e.target as HTMLTextAreaElement).value)}
        onScroll={(e) => gutter.current && (gutter.current.scrollTop = (e.target as HTMLTextAreaElement).scrollTop)}
        onKeyDown={(e) => {
          // Tab indents (YAML wants spaces) instead of leaving the editor.
          if (e.key !== 'Tab' || e.shiftKey) return;
          e.preventDefault();
          const t = e.target as HTMLTextAreaElement;
          t.setRangeText('  ', t.selectionStart, t.selectionEnd, 'end');
          onInput(t.value);
        }}
      />
    </div>
  );
}

/**
 * useYaml holds an editor's text and the outcome of the last check: the
 * error (with problems) or a note such as "valid".
 */
function useYaml(initial: string) {
  const [text, setText] = useState(initial);
  const [note, setNote] = useState('');
  const [busy, err, run] = useBusy();
  const validate = () =>
    run(async () => {
      setNote('');
      const r = await api<{ valid: boolean; problems: Problem[] }>('POST', validatePath, { body: text, contentType: YAML });
      if (!r.valid) throw new ApiError(400, 'INVALID', `${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}`, r);
      setNote('Valid.');
    });
  return { text, setText: (v: string) => (setText(v), setNote('')), note, setNote, busy, err, run, validate, problems: problemsOf(err) };
}

function Editor({ y, label }: { y: ReturnType<typeof useYaml>; label: string }) {
  return (
    <>
      <YamlEditor value={y.text} onInput={y.setText} problems={y.problems} label={label} />
      <ErrorBox error={y.err} />
      {y.note && (
        <div class="ok-text" role="status">
          {y.note}
        </div>
      )}
    </>
  );
}

/** YamlTab edits an existing app; onSaved reloads the app page. */
export function YamlTab({ app, onSaved }: { app: AppView; onSaved: () => void }) {
  const src = useAsync((signal) => api<string>('GET', appPath(app.name), { query: { format: 'yaml' }, signal }), [app.name, app.version]);
  return <Show a={src}>{(text) => <YamlForm app={app} text={text} onSaved={onSaved} />}</Show>;
}

function YamlForm({ app, text, onSaved }: { app: AppView; text: string; onSaved: () => void }) {
  const y = useYaml(text);
  const [confirm, setConfirm] = useState(false);
  const save = () =>
    y.run(async () => {
      const v = await api<AppView>('PUT', appPath(app.name), { body: y.text, contentType: YAML });
      y.setNote(`Saved: version ${v.version}.`);
      onSaved();
    });
  const del = () =>
    y.run(async () => {
      await api('DELETE', appPath(app.name));
      navigate(href('apps'));
    });
  return (
    <div class="yaml-tab">
      <div class="row toolbar">
        <button onClick={y.validate} disabled={y.busy}>
          Validate
        </button>
        <button class="primary" onClick={save} disabled={y.busy || y.text === text}>
          Save
        </button>
        <button onClick={() => y.setText(text)} disabled={y.busy || y.text === text}>
          Revert
        </button>
        <span class="grow" />
        <button class="danger" onClick={() => setConfirm(true)} disabled={y.busy}>
          Delete app
        </button>
      </div>
      <p class="muted small">
        Saving replaces the whole definition, including <code>enabled</code>; runs under way carry on with the new one. The app's <code>name</code> must stay{' '}
        <code>{app.name}</code>.
      </p>
      <Editor y={y} label="App YAML" />
      {confirm && (
        <Modal title={`Delete ${app.name}?`} onClose={() => setConfirm(false)}>
          <p>Its sources stop and its webhook URLs stop working. The run history stays until it is pruned.</p>
          <div class="row">
            <span class="grow" />
            <button onClick={() => setConfirm(false)}>Cancel</button>
            <button class="primary danger-fill" onClick={del} disabled={y.busy}>
              Delete
            </button>
          </div>
        </Modal>
      )}
    </div>
  );
}

/** NewAppModal creates an app from YAML (POST /v1/flux/apps). */
export function NewAppModal({ onClose }: { onClose: () => void }) {
  const y = useYaml(template);
  const create = () =>
    y.run(async () => {
      const v = await api<AppView>('POST', appsPath, { body: y.text, contentType: YAML });
      navigate(href('apps', v.name));
    });
  return (
    <Modal title="New app" onClose={onClose}>
      <p class="muted small">
        An app is channels, their event sources and actions (see docs/flows.md). Validate checks it on the server, with every problem's line and column.
      </p>
      <Editor y={y} label="New app YAML" />
      <div class="row">
        <span class="grow" />
        <button onClick={y.validate} disabled={y.busy}>
          Validate
        </button>
        <button class="primary" onClick={create} disabled={y.busy}>
          Create
        </button>
      </div>
    </Modal>
  );
}
