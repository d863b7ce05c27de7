// Placeholder: filled in by the console work of issue 6.
import { Page } from '../ui';

export function UsersPage(_: { path: string[]; query: URLSearchParams }) {
  return <Page title="users">Coming soon.</Page>;
}
