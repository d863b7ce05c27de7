// Placeholder: filled in by the console work of issue 6.
import { Page } from '../ui';

export function CamerasPage(_: { path: string[]; query: URLSearchParams }) {
  return <Page title="cameras">Coming soon.</Page>;
}
