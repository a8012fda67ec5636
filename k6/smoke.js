// Smoke: a few VUs walking through pages, to prove the stack works before a real load.
import { DURATION, PAGE_LIMIT, SUMMARY_TREND_STATS, THRESHOLDS, VUS } from './lib/config.js';
import { getPage, verifyTarget } from './lib/checks.js';
import { writeSummary } from './lib/summary.js';

export const options = {
  scenarios: {
    smoke: { executor: 'constant-vus', vus: VUS, duration: DURATION },
  },
  thresholds: THRESHOLDS,
  summaryTrendStats: SUMMARY_TREND_STATS,
};

export function setup() {
  return verifyTarget();
}

export default function (target) {
  // Spread over the table, first and last pages included.
  const pages = Math.max(1, Math.ceil(target.total / PAGE_LIMIT));
  const page = Math.floor(Math.random() * pages);
  getPage(page * PAGE_LIMIT);
}

export function handleSummary(data) {
  return writeSummary(data);
}
