// Soak: a constant, moderate load for a long time (give it --duration 30m or more), to see
// latency creep, memory growth or connection leaks: 90% on the first 20 pages, 10% anywhere.
import { PAGE_LIMIT } from './lib/config.js';
import { getPage, hotOffset } from './lib/checks.js';
import { scenarioOptions } from './lib/scenario.js';

export { setup, handleSummary } from './lib/scenario.js';
export const options = scenarioOptions('soak', 'constant');

export default function (target) {
  const pages = Math.max(1, Math.ceil(target.total / PAGE_LIMIT));
  getPage(Math.random() < 0.9 ? hotOffset(20) : hotOffset(pages), target);
}
