// The page request and what counts as a good page.
import http from 'k6/http';
import { BASE_URL, PAGE_LIMIT, PAGE_PATH, TARGET_PATH } from './config.js';
import { cheapCheck, fullCheck, pageParams, sampled } from './verify.js';

// Only 200 is a right status: http_req_failed then counts every other one, and its rate is
// the share of responses that were not 200 (the reference report's "200 responses"), with
// no metric of our own to emit on every request.
http.setResponseCallback(http.expectedStatuses(200));

/** GET one page of alumnos and check it: cheaply every time, in full on a sample (or
 * TARGET_PATH, when set, for its status only). `target` is what setup() verified. */
export function getPage(offset, target) {
  if (TARGET_PATH) {
    return getTarget();
  }
  const full = sampled();
  const res = http.get(`${BASE_URL}${PAGE_PATH}?limit=${PAGE_LIMIT}&offset=${offset}`,
    pageParams(full));
  if (cheapCheck(res, offset, target) && full) {
    fullCheck(res, offset, target);
  }
  return res;
}

/** A random offset among the first `pages` pages (a hot set, as people browse an index). */
export function hotOffset(pages) {
  return Math.floor(Math.random() * pages) * PAGE_LIMIT;
}

const TARGET_PARAMS = { tags: { name: 'target' } };

/** GET TARGET_PATH; its status is judged by http_req_failed (200 only). */
export function getTarget() {
  return http.get(`${BASE_URL}${TARGET_PATH}`, TARGET_PARAMS);
}
