// Placeholder: filled in by the console work of issue 6.
import { Page } from '../ui';

export function DashboardsPage(_: { path: string[]; query: URLSearchParams }) {
  return <Page title="dashboards">Coming soon.</Page>;
}
