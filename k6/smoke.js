// Smoke: a few VUs walking through pages, to prove the stack works before a real load.
import { PAGE_LIMIT } from './lib/config.js';
import { getPage } from './lib/checks.js';
import { scenarioOptions } from './lib/scenario.js';

export { setup, handleSummary } from './lib/scenario.js';
export const options = scenarioOptions('smoke', 'constant');

export default function (target) {
  // Spread over the table, first and last pages included.
  const pages = Math.max(1, Math.ceil(target.total / PAGE_LIMIT));
  const page = Math.floor(Math.random() * pages);
  getPage(page * PAGE_LIMIT, target);
}
