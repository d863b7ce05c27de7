// Placeholder: filled in by the console work of issue 6.
import { Page } from '../ui';

export function GroupsPage(_: { path: string[]; query: URLSearchParams }) {
  return <Page title="groups">Coming soon.</Page>;
}
