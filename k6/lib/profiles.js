// Load shapes shared by the scenarios, each in a closed model (VUs) or an open one (RATE).
//
// Closed model: VUs loop as fast as the server answers, so a slower server gets fewer requests
// and its latency looks better than users would see it (coordinated omission). Open model
// (RATE > 0): k6 starts RATE iterations per second whatever the server does, with up to VUS
// VUs; when none is free the iteration is dropped and counted in dropped_iterations.
import { DURATION, RATE, VUS, durationSeconds } from './config.js';

/** Stages as fractions of the run: [[share of duration, share of the peak], ...]. */
function stages(shape, peak) {
  const total = durationSeconds(DURATION);
  const seconds = shape.map(([share]) => Math.max(1, Math.round(total * share)));
  // Rounding must not change the length of the run: the last stage takes the difference.
  seconds[seconds.length - 1] = Math.max(1, total - seconds.slice(0, -1).reduce((a, b) => a + b, 0));
  return shape.map(([, level], i) => ({ duration: `${seconds[i]}s`, target: Math.round(peak * level) }));
}

// One file for k6 and for alumnos report, which averages them (Little's law).
export const SHAPES = JSON.parse(open('./shapes.json'));

/** A k6 scenario for a shape ('constant' or a key of SHAPES), closed or open model. */
export function scenario(shape, extra = {}) {
  const open = RATE > 0;
  let executor;
  if (shape === 'constant') {
    executor = open
      ? { executor: 'constant-arrival-rate', rate: RATE, timeUnit: '1s', duration: DURATION,
          preAllocatedVUs: VUS, maxVUs: VUS }
      : { executor: 'constant-vus', vus: VUS, duration: DURATION };
  } else {
    executor = open
      ? { executor: 'ramping-arrival-rate', startRate: 0, timeUnit: '1s',
          stages: stages(SHAPES[shape], RATE), preAllocatedVUs: VUS, maxVUs: VUS }
      : { executor: 'ramping-vus', startVUs: 0, stages: stages(SHAPES[shape], VUS) };
  }
  return { ...executor, ...extra };
}
