// Placeholder: filled in by the console work of issue 6.
import { Page } from '../ui';

export function CredentialsPage(_: { path: string[]; query: URLSearchParams }) {
  return <Page title="credentials">Coming soon.</Page>;
}
