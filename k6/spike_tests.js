// Spike: a sudden jump to VUS virtual users (or RATE requests/s) on the first page, held, then dropped.
// The reference report's test: 200 VUs for 2 minutes on GET /api/v1/alumno/alumno?limit=100&offset=0.
import { getPage } from './lib/checks.js';
import { scenarioOptions } from './lib/scenario.js';

export { setup, handleSummary } from './lib/scenario.js';
export const options = scenarioOptions('spike', 'spike');

export default function () {
  getPage(0);
}
