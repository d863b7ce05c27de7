// Placeholder: filled in by the console work of issue 6.
import { Page } from '../ui';

export function DevicesPage(_: { path: string[]; query: URLSearchParams }) {
  return <Page title="devices">Coming soon.</Page>;
}
