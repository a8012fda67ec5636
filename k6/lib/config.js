// Load settings from the environment, so one script serves any target and load.
// alumnos bench sets them; by hand: k6 run -e BASE_URL=http://127.0.0.1:8080 -e VUS=200 -e DURATION=2m k6/spike_tests.js

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
// BASE_URL may hold user:password (k6 sends them as HTTP Basic auth); messages and logs show
// SHOWN_URL, its password masked as alumnos masks every URL it shows.
export const SHOWN_URL = maskPassword(BASE_URL);
// Names under .localhost are loopback (RFC 6761), but the resolver here does not know them:
// k6 connects to 127.0.0.1 (its hosts option) and still sends the name as the Host header,
// which is what Traefik routes on (the compose stack's URL is http://alumnos.universidad.localhost:PORT).
export const HOSTS = loopbackHosts(BASE_URL);
export const VUS = parseInt(__ENV.VUS || '10', 10);
export const DURATION = __ENV.DURATION || '30s';
// Open model: requests (iterations) per second; 0 keeps the closed model (VUS in a loop).
export const RATE = parseFloat(__ENV.RATE || '0');
export const PAGE_LIMIT = parseInt(__ENV.PAGE_LIMIT || '100', 10);
export const PAGE_PATH = '/api/v1/alumno/alumno';
// Calibration: the same load on another path (the trivial /api/v1/ping) measures the ceiling.
export const TARGET_PATH = __ENV.TARGET_PATH || '';
// One file of defaults for k6 and alumnos bench.
const DEFAULTS = JSON.parse(open('./defaults.json'));
// One response in VERIFY_SAMPLE per VU is parsed and checked in full; every response is
// checked cheaply (lib/verify.js). 1 checks every response in full.
export const VERIFY_SAMPLE = Math.max(1,
  parseInt(__ENV.VERIFY_SAMPLE || String(DEFAULTS.verify_sample), 10));
// The only system tags the report reads: fewer tags, less work for k6 per request. `scenario`
// is on the scenario's own samples only, not on setup()'s: the run's figures and breakdown
// select on it, so setup's requests stay out of them.
export const SYSTEM_TAGS = ['name', 'status', 'expected_response', 'error_code', 'check',
  'scenario'];

// p(99) and p(99.9) are not in k6's default trend stats; the report needs them. k6 keeps
// every duration for its percentiles anyway, so one more costs a lookup at the end, no more.
export const SUMMARY_TREND_STATS = ['avg', 'min', 'med', 'max', 'p(50)', 'p(90)', 'p(95)', 'p(99)',
  'p(99.9)'];

// Targets, as k6 thresholds: a run that misses them exits with code 99.
// alumnos bench --p95 / --max-error-rate set them; the defaults are deliberately loose.
const P95_MS = parseFloat(__ENV.THRESHOLD_P95_MS || String(DEFAULTS.p95_ms));
const ERROR_RATE = parseFloat(__ENV.THRESHOLD_ERROR_RATE || String(DEFAULTS.max_error_rate));

/** The targets of scenario `name`, on its own requests: a threshold on {scenario:name} makes
 * k6 keep that sub-metric, which handleSummary reports and the report reads as the run's
 * figures, setup()'s requests left out (they carry no scenario tag). Cost: one tag compared
 * per sample of the two metrics; the durations are kept twice (8 bytes a request). */
export function thresholds(name) {
  return {
    // Any status but 200 (lib/checks.js): errors may reach this share.
    [`http_req_failed{scenario:${name}}`]: [`rate<${ERROR_RATE}`],
    [`http_req_duration{scenario:${name}}`]: [`p(95)<${P95_MS}`],
    // A 200 with the wrong rows is no error to tolerate: one wrong answer fails the run.
    wrong_answers: ['count<1'],
  };
}

/** The same thresholds, stopping the test once one is crossed (stress). k6 evaluates them on
 * the whole run so far, every few seconds, so it stops somewhat after the step that broke.
 * One of several generators (alumnos bench --generator sets SEGMENTED) sees only its share:
 * it keeps the thresholds, which the controller judges on the merged figures, and never
 * aborts on its own. */
export function abortingThresholds(name) {
  if (__ENV.SEGMENTED) {
    return thresholds(name);
  }
  const aborting = {};
  for (const [metric, expressions] of Object.entries(thresholds(name))) {
    aborting[metric] = expressions.map((threshold) => (
      { threshold, abortOnFail: true, delayAbortEval: '5s' }));
  }
  return aborting;
}

/** Seconds in a k6 duration string such as "2m", "90s" or "1m30s". */
export function durationSeconds(text) {
  const units = { h: 3600, m: 60, s: 1, ms: 0.001 };
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let match;
  let consumed = '';
  while ((match = re.exec(text)) !== null) {
    total += parseFloat(match[1]) * units[match[2]];
    consumed += match[0];
  }
  if (consumed !== text || total <= 0) {
    throw new Error(`DURATION must look like 30s, 2m or 1m30s, got "${text}"`);
  }
  return total;
}

/** The URL with the password of its user:password part hidden (the last @ ends it). */
export function maskPassword(url) {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#@:]*):[^/?#]*@/i, '$1:***@');
}

/** { name: '127.0.0.1' } for a BASE_URL whose host is under .localhost, else {}. */
export function loopbackHosts(url) {
  const match = /^https?:\/\/(?:[^/?#]*@)?([^/:?#]+)/i.exec(url);
  const host = match ? match[1].toLowerCase().replace(/\.$/, '') : '';
  return host.endsWith('.localhost') ? { [host]: '127.0.0.1' } : {};
}
