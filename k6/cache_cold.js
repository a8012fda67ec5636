// Cache-cold: every request asks for an offset no request of the run asked for before, so no
// cache can answer: what PostgreSQL and the service give on their own, under the same load.
import exec from 'k6/execution';
import { getPage } from './lib/checks.js';
import { scenarioOptions } from './lib/scenario.js';

export { setup, handleSummary } from './lib/scenario.js';
export const options = scenarioOptions('cache_cold', 'constant');

export default function (target) {
  // Distinct for the first `total` iterations of the run (2,000,000 with the reference data);
  // alumnos bench gives each run a random COLD_START so two runs do not share their keys.
  const start = Math.floor(target.total * 0.5 * Number(__ENV.COLD_START || 0));
  const offset = (start + exec.scenario.iterationInTest) % target.total;
  getPage(offset, target);
}
