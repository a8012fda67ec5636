// Spike: a sudden jump to VUS virtual users (or RATE requests/s) on the first page, held, then dropped.
// The reference report's test: 200 VUs for 2 minutes on GET /api/v1/alumno/alumno?limit=100&offset=0.
import { getPage } from './lib/checks.js';
import { scenarioOptions } from './lib/scenario.js';
import { verifyTarget } from './lib/verify.js';

export { handleSummary } from './lib/scenario.js';
export const options = scenarioOptions('spike', 'spike');

/** One page, always: every response must have its exact length, a sample its exact bytes. */
export function setup() {
  return verifyTarget(0);
}

export default function (target) {
  getPage(0, target);
}
