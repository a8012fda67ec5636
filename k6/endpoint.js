// Endpoint: constant VUs on one path (TARGET_PATH), for calibration and speed comparisons.
// The ceiling: TARGET_PATH=/api/v1/ping. A deep page: TARGET_PATH='/api/v1/alumno/alumno?limit=100&offset=1999900'.
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
const URL = `${BASE_URL}${TARGET_PATH}`;
const PARAMS = { tags: { name: 'endpoint' } };

// Status only, judged by http_req_failed (lib/checks.js expects 200); bodies are discarded.
export const options = scenarioOptions('endpoint', 'constant');

// Any path may be loaded here, so the check is only that it answers 200.
export function setup() {
  const res = http.get(URL, { responseType: 'text' });
  if (res.status !== 200) {
    throw new Error(`${URL} answered ${res.status}, not 200: ${res.body}`);
  }
}

export default function () {
  http.get(URL, PARAMS);
  if (PACING_S > 0) {
    sleep(PACING_S);
  }
}
