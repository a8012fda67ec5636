// What counts as a right answer, checked so that k6 measures the service and not itself:
// every response cheaply (status, content type, body size from Content-Length: the body is
// not kept), and one response in VERIFY_SAMPLE per VU fully (the body parsed: JSON, rows,
// offset, ids, total; for a page that never changes, its exact bytes). A wrong answer counts
// in wrong_answers, whose threshold fails the run at the first one; a status other than 200
// counts in http_req_failed (lib/checks.js tells k6 that only 200 is expected).
//
// The cheap check emits no metric when the answer is right: a check() on every response cost
// k6 about a tenth more CPU per request (benchmarks/generator_cost.py).
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import { BASE_URL, PAGE_LIMIT, PAGE_PATH, SHOWN_URL, VERIFY_SAMPLE } from './config.js';

export const wrongAnswers = new Counter('wrong_answers');
export const verifiedAnswers = new Counter('verified_answers');

// A page's body may be this far from the reference page's bytes per row and still pass the
// cheap check; rows differ in length (names, e-mails), a wrong row count does not pass.
const ROW_BYTES_SLACK = 0.5;

// Each VU runs its own copy of this module, so this counts the VU's own requests (asking
// k6/execution for the iteration number on every request cost k6 a fifth more CPU).
let requests = 0;

/** True for the VU's first request and every VERIFY_SAMPLE-th after it: those are parsed and
 * checked in full. */
export function sampled() {
  requests += 1;
  return (requests - 1) % VERIFY_SAMPLE === 0;
}

const KEEP = { tags: { name: 'alumnos_page' }, responseType: 'text' };
const DISCARD = { tags: { name: 'alumnos_page' }, responseType: 'none' };

/** A page request's parameters: the body kept only when it will be verified. */
export function pageParams(keepBody) {
  return keepBody ? KEEP : DISCARD;
}

function rowsAt(offset, target) {
  return Math.max(0, Math.min(PAGE_LIMIT, target.total - offset));
}

function contentLength(res) {
  return parseInt(res.headers['Content-Length'] || '-1', 10);
}

/** Status, type and size: cheap enough for every response (the headers are read once).
 * True when the response may be checked in full. */
export function cheapCheck(res, offset, target) {
  if (res.status !== 200) {
    return false; // counted by http_req_failed
  }
  const headers = res.headers;
  const length = parseInt(headers['Content-Length'] || '-1', 10);
  const rows = rowsAt(offset, target);
  const size = target.fixedLength !== undefined
    ? length === target.fixedLength
    : Math.abs(length - target.envelopeBytes - rows * target.rowBytes)
      <= Math.max(rows, 1) * target.rowBytes * ROW_BYTES_SLACK;
  if (!size || !(headers['Content-Type'] || '').startsWith('application/json')) {
    wrongAnswers.add(1, { wrong: 'size or type' });
    return false;
  }
  return true;
}

/** Every field of the page: the full check, on a sample. */
export function fullCheck(res, offset, target) {
  verifiedAnswers.add(1);
  const problem = pageProblem(res.body, offset, target);
  check(res, { 'page verified in full (rows, offset, ids, total)': () => problem === null });
  if (problem !== null) {
    wrongAnswers.add(1, { wrong: problem });
  }
}

/** Why a page body is wrong, or null when it is right. */
export function pageProblem(text, offset, target) {
  if (target.reference !== undefined) {
    return text === target.reference ? null : 'not the bytes of the verified page';
  }
  let body;
  try {
    body = JSON.parse(text);
  } catch (e) {
    return 'not JSON';
  }
  if (!body || !Array.isArray(body.items)) {
    return 'no items';
  }
  if (body.items.length !== rowsAt(offset, target)) {
    return 'wrong number of rows';
  }
  if (body.total !== target.total) {
    return 'wrong total';
  }
  if (body.offset !== offset) {
    return 'rows from the wrong offset';
  }
  for (let i = 0; i < body.items.length; i += 1) {
    const id = body.items[i].id;
    const expected = target.dense ? target.firstId + offset + i : id;
    if (id !== expected || (i > 0 && id <= body.items[i - 1].id)) {
      return 'wrong ids';
    }
  }
  return null;
}

function getJson(path) {
  const res = http.get(`${BASE_URL}${path}`, { tags: { name: 'verify' }, responseType: 'text' });
  if (res.status !== 200) {
    throw new Error(`target ${SHOWN_URL}${path} answered ${res.status}, not 200: ${res.body}`);
  }
  try {
    return [res, JSON.parse(res.body)];
  } catch (e) {
    throw new Error(`target ${SHOWN_URL}${path} does not answer JSON: ${res.body}`);
  }
}

/** Before any load: the target is a seeded alumnos service; what a right page looks like. */
export function verifyTarget(fixedOffset) {
  const [, first] = getJson(`${PAGE_PATH}?limit=1&offset=0`);
  if (!first || !Array.isArray(first.items) || typeof first.total !== 'number') {
    throw new Error(`target ${SHOWN_URL} does not return an alumnos page: ${JSON.stringify(first)}`);
  }
  if (first.total < 1) {
    throw new Error(`target ${SHOWN_URL} has no alumnos; run alumnos seed first`);
  }
  const [, last] = getJson(`${PAGE_PATH}?limit=1&offset=${first.total - 1}`);
  const firstId = first.items[0].id;
  const target = { total: first.total, firstId,
    dense: last.items.length === 1 && last.items[0].id - firstId === first.total - 1 };
  const offset = fixedOffset === undefined ? 0 : fixedOffset;
  const [page] = getJson(`${PAGE_PATH}?limit=${PAGE_LIMIT}&offset=${offset}`);
  const problem = pageProblem(page.body, offset, target);
  if (problem !== null) {
    throw new Error(`target ${SHOWN_URL} serves a wrong page at offset ${offset}: ${problem}`);
  }
  const rows = rowsAt(offset, target);
  const bytes = contentLength(page);
  const [emptyPage] = getJson(`${PAGE_PATH}?limit=1&offset=${first.total}`);
  target.envelopeBytes = contentLength(emptyPage);
  target.rowBytes = rows > 0 ? (bytes - target.envelopeBytes) / rows : 0;
  if (fixedOffset !== undefined) {
    // A page that never changes: every response must have its length, a sample its bytes.
    target.fixedLength = bytes;
    target.reference = page.body;
  }
  return target;
}
