// The Test tab: send a JSON message to a channel, either as a test run that
// waits for the run and shows its trace here (POST …/test), or as a plain
// message that only queues it (POST …/messages).
import { useState } from 'preact/hooks';
import { api } from '../api';
import { href, navigate } from '../router';
import { ErrorBox, useBusy } from '../ui';
import { appPath, type AppView, type RunDetail } from './model';
import { RunTrace } from './Trace';

type Result = { kind: 'test'; run: RunDetail } | { kind: 'message'; runId: string };

function jsonProblem(text: string): string {
  try {
    JSON.parse(text);
    return '';
  } catch (e) {
    return (e as Error).message;
  }
}

export function TestTab({ app, channel }: { app: AppView; channel: string }) {
  const names = app.channels.map((c) => c.name);
  const ch = names.includes(channel) ? channel : names[0];
  const [text, setText] = useState('{\n  \n}');
  const [result, setResult] = useState<Result | null>(null);
  const [busy, err, run] = useBusy();
  const problem = jsonProblem(text);
  const send = (kind: 'test' | 'message') =>
    run(async () => {
      setResult(null);
      if (kind === 'test') {
        const r = await api<RunDetail>('POST', appPath(app.name, 'channels', ch, 'test'), { query: { timeout: 30 }, body: text, contentType: 'application/json' });
        setResult({ kind, run: r });
      } else {
        const r = await api<{ runId: string }>('POST', appPath(app.name, 'channels', ch, 'messages'), { body: text, contentType: 'application/json' });
        setResult({ kind, runId: r.runId });
      }
    });
  return (
    <div class="test-tab">
      <form
        class="card test-form"
        aria-label="Send a test message"
        onSubmit={(e) => {
          e.preventDefault();
          send('test');
        }}
      >
        <label>
          Channel
          <select value={ch} onChange={(e) => navigate(href('apps', app.name, 'test') + '?channel=' + encodeURIComponent((e.target as HTMLSelectElement).value))}>
            {names.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <label>
          Payload (JSON)
          <textarea class="code payload" spellcheck={false} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} aria-invalid={!!problem} />
        </label>
        {problem && (
          <div class="bad-text small" data-testid="json-problem">
            Not valid JSON: {problem}
          </div>
        )}
        <div class="row">
          <button class="primary" type="submit" disabled={busy || !!problem}>
            {busy ? 'Running…' : 'Send test'}
          </button>
          <button type="button" onClick={() => send('message')} disabled={busy || !!problem}>
            Send message
          </button>
          <span class="muted small">
            Send test waits (up to 30 s) for the run and shows its trace; Send message only queues it. {app.enabled ? '' : 'The app is disabled: enable it first.'}
          </span>
        </div>
        <ErrorBox error={err} />
      </form>
      {result?.kind === 'message' && (
        <p role="status" data-testid="message-sent">
          Message queued: run <a href={href('apps', app.name, 'runs', result.runId)}>{result.runId}</a>
        </p>
      )}
      {result?.kind === 'test' && (
        <div class="test-result" data-testid="test-result">
          <h2>Result</h2>
          <RunTrace app={app.name} runId={result.run.runId} initial={result.run} />
        </div>
      )}
    </div>
  );
}
