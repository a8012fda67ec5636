// Stress: steps of a fifth of the peak (VUS or RATE), each held, until the thresholds break:
// k6 stops the test once one is crossed (judged on the run so far), so the run's length
// tells how far it went.
import { abortingThresholds } from './lib/config.js';
import { getPage, hotOffset } from './lib/checks.js';
import { scenarioOptions } from './lib/scenario.js';

export { setup, handleSummary } from './lib/scenario.js';
export const options = scenarioOptions('stress', 'stress', abortingThresholds('stress'));

export default function (target) {
  getPage(hotOffset(20), target);
}
