// The least k6 can do per request: constant VUs, one GET, a status check, no body kept.
// benchmarks/generator_cost.py measures alumnos bench's scenarios against it.
import http from 'k6/http';
import { check } from 'k6';

export const options = {
  scenarios: { bare: { executor: 'constant-vus', vus: parseInt(__ENV.VUS || '200', 10),
                       duration: __ENV.DURATION || '15s' } },
  discardResponseBodies: true,
};

const URL = `${__ENV.BASE_URL || 'http://127.0.0.1:8080'}${__ENV.TARGET_PATH
  || '/api/v1/alumno/alumno?limit=100&offset=0'}`;

export default function () {
  const res = http.get(URL);
  check(res, { 'status is 200': (r) => r.status === 200 });
}

export function handleSummary(data) {
  return { [__ENV.SUMMARY_PATH || 'bare-summary.json']: JSON.stringify(data) };
}
