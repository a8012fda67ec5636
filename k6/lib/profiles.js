// Load shapes shared by the scenarios, each in a closed model (VUs) or an open one (RATE).
//
// Closed model: VUs loop as fast as the server answers, so a slower server gets fewer requests
// and its latency looks better than users would see it (coordinated omission). Open model
// (RATE > 0): k6 starts RATE iterations per second whatever the server does, with up to VUS
// VUs; when none is free the iteration is dropped and counted in dropped_iterations.
import { DURATION, RATE, VUS, durationSeconds } from './config.js';

/** Stages as fractions of the run: [[share of duration, share of the peak], ...].
 * Stage boundaries are rounded, not stage lengths, so the stages always add up to the run's
 * duration (a stage may take 0 s on a very short run: an immediate step). */
function stages(shape, peak) {
  const total = Math.round(durationSeconds(DURATION));
  const sum = shape.reduce((acc, [share]) => acc + share, 0);
  let elapsed = 0;
  let boundary = 0;
  return shape.map(([share, level]) => {
    elapsed += share / sum;
    const next = Math.round(total * elapsed);
    const stage = { duration: `${next - boundary}s`, target: Math.max(0, Math.round(peak * level)) };
    boundary = next;
    return stage;
  });
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
