// Load: the expected load, ramped up over 10% of the run, held, ramped down over the last 10%,
// on the first 20 pages (people browse the start of an index; most answers come from cache).
import { getPage, hotOffset } from './lib/checks.js';
import { scenarioOptions } from './lib/scenario.js';

export { setup, handleSummary } from './lib/scenario.js';
export const options = scenarioOptions('load', 'load');

export default function (target) {
  getPage(hotOffset(20), target);
}
