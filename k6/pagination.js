// Pagination: random offsets over the whole table, a tenth of them among the last 10 pages
// (deep offsets must cost like shallow). Every page's size is checked, and a sample of pages
// in full: the rows at its offset, their ids, the total (VERIFY_SAMPLE=1 checks them all).
import { PAGE_LIMIT } from './lib/config.js';
import { getPage } from './lib/checks.js';
import { scenarioOptions } from './lib/scenario.js';

export { setup, handleSummary } from './lib/scenario.js';
export const options = scenarioOptions('pagination', 'constant');

export default function (target) {
  const pages = Math.max(1, Math.ceil(target.total / PAGE_LIMIT));
  const last = Math.random() < 0.1;
  const page = last ? pages - 1 - Math.floor(Math.random() * Math.min(10, pages))
    : Math.floor(Math.random() * pages);
  getPage(page * PAGE_LIMIT, target);
}
