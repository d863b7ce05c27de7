// Placeholder: filled in by the console work of issue 6.
import { Page } from '../ui';

export function FilesPage(_: { path: string[]; query: URLSearchParams }) {
  return <Page title="files">Coming soon.</Page>;
}
