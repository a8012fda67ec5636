// Endpoint: constant VUs on one path (TARGET_PATH), for calibration and speed comparisons.
// The ceiling: TARGET_PATH=/api/v1/ping. A deep page: TARGET_PATH='/api/v1/alumno/alumno?limit=100&offset=1999900'.
// Random pages: TARGET_PATH='/api/v1/alumno/alumno?limit=100&offset={offset}' puts a random
// offset of a full page in each request, drawn below the total that setup() reads.
import http from 'k6/http';
import { sleep } from 'k6';
import { BASE_URL } from './lib/config.js';
import './lib/checks.js';
import { scenarioOptions } from './lib/scenario.js';

export { handleSummary } from './lib/scenario.js';

const TARGET_PATH = __ENV.TARGET_PATH || '/api/v1/alumno/alumno?limit=100&offset=0';
// Seconds each VU waits between requests (none by default): with one source address per VU
// (k6 --local-ips), it keeps every VU under a per-address rate limit, as distinct users are.
const PACING_S = Number(__ENV.PACING_S || 0);
const OFFSET_TOKEN = '{offset}';
// The path around each {offset}: the offset drawn goes wherever the token stands.
const PARTS = TARGET_PATH.split(OFFSET_TOKEN);
const RANDOM = PARTS.length > 1;
const PARAMS = { tags: { name: 'endpoint' } };

// Status only, judged by http_req_failed (lib/checks.js expects 200); bodies are discarded.
export const options = scenarioOptions('endpoint', 'constant');

// Any path may be loaded here, so the check is only that it answers 200. With {offset}, the
// first page also tells how many offsets hold a full page.
export function setup() {
  const url = `${BASE_URL}${PARTS.join('0')}`;
  const res = http.get(url, { responseType: 'text' });
  if (res.status !== 200) {
    throw new Error(`${url} answered ${res.status}, not 200: ${res.body}`);
  }
  if (!RANDOM) {
    return { offsets: 0 };
  }
  const page = res.json();
  if (typeof page.total !== 'number' || typeof page.limit !== 'number') {
    throw new Error(`${url} has no total and limit: {offset} applies to pages of alumnos`);
  }
  return { offsets: Math.max(1, page.total - page.limit + 1) };
}

export default function (target) {
  const path = RANDOM ? PARTS.join(String(Math.floor(Math.random() * target.offsets)))
    : TARGET_PATH;
  http.get(`${BASE_URL}${path}`, PARAMS);
  if (PACING_S > 0) {
    sleep(PACING_S);
  }
}
