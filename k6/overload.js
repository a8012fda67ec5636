// Overload, for `alumnos patterns overload`: random pages over the whole table (uncached when
// the stack runs without its cache), more VUs than the replicas run at once. What counts is
// how the stack says no: a refusal is a 503 or 429 problem with Retry-After, any other
// failure is a failure; refusals are timed, to tell a fast "no" from a hang.
import http from 'k6/http';
import { Counter, Trend } from 'k6/metrics';
import { BASE_URL, PAGE_LIMIT, PAGE_PATH } from './lib/config.js';
import './lib/checks.js';
import { scenarioOptions } from './lib/scenario.js';

export { setup, handleSummary } from './lib/scenario.js';

// The proof counts these three, not http_reqs: they leave out setup()'s request.
const served = new Counter('served');
const refusals = new Counter('refusals');
const failures = new Counter('failures');
const refusalTime = new Trend('refusal_duration', true);
const PARAMS = { tags: { name: 'alumnos_page' } };

// No thresholds: the proof judges the figures itself.
export const options = scenarioOptions('overload', 'constant', {});

export default function (target) {
  const pages = Math.max(1, Math.ceil(target.total / PAGE_LIMIT));
  const offset = Math.floor(Math.random() * pages) * PAGE_LIMIT;
  const res = http.get(`${BASE_URL}${PAGE_PATH}?limit=${PAGE_LIMIT}&offset=${offset}`, PARAMS);
  if (res.status === 200) {
    served.add(1);
    return;
  }
  const headers = res.headers;
  const refused = (res.status === 503 || res.status === 429) && headers['Retry-After']
    && (headers['Content-Type'] || '').startsWith('application/problem+json');
  if (refused) {
    refusals.add(1);
    refusalTime.add(res.timings.duration);
  } else {
    failures.add(1);
  }
}
