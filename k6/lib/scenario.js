// What every scenario shares: its options from a name and a load shape, the target check
// before any load, and the summary written where alumnos bench asked for it.
import { HOSTS, SUMMARY_TREND_STATS, SYSTEM_TAGS, thresholds } from './config.js';
import { scenario } from './profiles.js';
import { verifyTarget } from './verify.js';
import { writeSummary } from './summary.js';

/** k6 options for one scenario: its executor (closed or open model), thresholds (the targets
 * on its own requests unless given), stats. Bodies are discarded unless a request asks for its
 * own (the verified sample). */
export function scenarioOptions(name, shape, given = undefined, extra = {}) {
  return {
    scenarios: { [name]: scenario(shape) },
    thresholds: given === undefined ? thresholds(name) : given,
    summaryTrendStats: SUMMARY_TREND_STATS,
    systemTags: SYSTEM_TAGS,
    discardResponseBodies: true,
    hosts: HOSTS,
    ...extra,
  };
}

/** Fail before any load when the target is not a seeded alumnos service; learn what a right
 * page looks like, for the checks during the load. */
export function setup() {
  return verifyTarget();
}

export function handleSummary(data) {
  return writeSummary(data);
}
