// Shared request, checks and metrics: what counts as a good page.
import http from 'k6/http';
import { check } from 'k6';
import { Rate } from 'k6/metrics';
import { BASE_URL, PAGE_LIMIT, PAGE_PATH, TARGET_PATH } from './config.js';

// Share of responses that were exactly 200, as the reference report gives it.
export const status200 = new Rate('http_200');

/** GET one page of alumnos and check its status and shape (or TARGET_PATH, when set). */
export function getPage(offset) {
  if (TARGET_PATH) {
    return getTarget();
  }
  const res = http.get(`${BASE_URL}${PAGE_PATH}?limit=${PAGE_LIMIT}&offset=${offset}`, {
    tags: { name: 'alumnos_page' },
  });
  status200.add(res.status === 200);
  check(res, {
    'status is 200': (r) => r.status === 200,
    'page has items': (r) => r.status === 200 && Array.isArray(r.json('items')),
  });
  return res;
}

/** A random offset among the first `pages` pages (a hot set, as people browse an index). */
export function hotOffset(pages) {
  return Math.floor(Math.random() * pages) * PAGE_LIMIT;
}

/** GET a page and check that it holds exactly the rows the table has at that offset. */
export function getExactPage(offset, total) {
  const res = getPage(offset);
  const expected = Math.max(0, Math.min(PAGE_LIMIT, total - offset));
  check(res, {
    'page holds the rows at its offset': (r) => r.status === 200
      && r.json('items').length === expected && r.json('total') === total,
  });
  return res;
}

/** GET TARGET_PATH and check its status only. */
export function getTarget() {
  const res = http.get(`${BASE_URL}${TARGET_PATH}`, { tags: { name: 'target' } });
  status200.add(res.status === 200);
  check(res, { 'status is 200': (r) => r.status === 200 });
  return res;
}

/** Fail before any load when the target is not the alumnos service (wrong URL, no data). */
export function verifyTarget() {
  const res = http.get(`${BASE_URL}${PAGE_PATH}?limit=1&offset=0`, { tags: { name: 'verify' } });
  if (res.status !== 200) {
    throw new Error(`target ${BASE_URL}${PAGE_PATH} answered ${res.status}, not 200: ${res.body}`);
  }
  const body = res.json();
  if (!body || !Array.isArray(body.items) || typeof body.total !== 'number') {
    throw new Error(`target ${BASE_URL} does not return an alumnos page: ${res.body}`);
  }
  if (body.total < 1) {
    throw new Error(`target ${BASE_URL} has no alumnos; run alumnos seed first`);
  }
  return { total: body.total };
}
