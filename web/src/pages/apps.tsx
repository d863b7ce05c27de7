// Placeholder: filled in by the console work of issue 6.
import { Page } from '../ui';

export function AppsPage(_: { path: string[]; query: URLSearchParams }) {
  return <Page title="apps">Coming soon.</Page>;
}
