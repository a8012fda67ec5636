// Spike: a sudden jump to VUS virtual users on the first page, held, then dropped.
// The reference report's test: 200 VUs for 2 minutes on GET /api/v1/alumno/alumno?limit=100&offset=0.
import { SUMMARY_TREND_STATS, THRESHOLDS, VUS, DURATION } from './lib/config.js';
import { spikeStages } from './lib/profiles.js';
import { getPage, verifyTarget } from './lib/checks.js';
import { writeSummary } from './lib/summary.js';

export const options = {
  scenarios: {
    spike: { executor: 'ramping-vus', startVUs: 0, stages: spikeStages(VUS, DURATION) },
  },
  thresholds: THRESHOLDS,
  summaryTrendStats: SUMMARY_TREND_STATS,
};

export function setup() {
  return verifyTarget();
}

export default function () {
  getPage(0);
}

export function handleSummary(data) {
  return writeSummary(data);
}
