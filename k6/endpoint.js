// Endpoint: constant VUs on one path (TARGET_PATH), for calibration and speed comparisons.
// The ceiling: TARGET_PATH=/api/v1/ping. A deep page: TARGET_PATH='/api/v1/alumno/alumno?limit=100&offset=1999900'.
import http from 'k6/http';
import { check, sleep } from 'k6';
import { BASE_URL, THRESHOLDS } from './lib/config.js';
import { status200 } from './lib/checks.js';
import { scenarioOptions } from './lib/scenario.js';

export { handleSummary } from './lib/scenario.js';

const TARGET_PATH = __ENV.TARGET_PATH || '/api/v1/alumno/alumno?limit=100&offset=0';
// Seconds each VU waits between requests (none by default): with one source address per VU
// (k6 --local-ips), it keeps every VU under a per-address rate limit, as distinct users are.
const PACING_S = Number(__ENV.PACING_S || 0);

// Status only: keeping 25 KB bodies costs k6 CPU that the server under test then lacks.
export const options = scenarioOptions('endpoint', 'constant', THRESHOLDS,
  { discardResponseBodies: true });

// Any path may be loaded here, so the check is only that it answers 200.
export function setup() {
  const res = http.get(`${BASE_URL}${TARGET_PATH}`);
  if (res.status !== 200) {
    throw new Error(`${BASE_URL}${TARGET_PATH} answered ${res.status}, not 200: ${res.body}`);
  }
}

export default function () {
  const res = http.get(`${BASE_URL}${TARGET_PATH}`, { tags: { name: 'endpoint' } });
  status200.add(res.status === 200);
  check(res, { 'status is 200': (r) => r.status === 200 });
  if (PACING_S > 0) {
    sleep(PACING_S);
  }
}
