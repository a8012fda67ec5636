// Load shapes shared by the scenarios.
import { durationSeconds } from './config.js';

/** A spike: a sudden jump to the peak, a hold, and a drop; the shares add up to the duration. */
export function spikeStages(peakVus, duration) {
  const total = durationSeconds(duration);
  const jump = Math.max(1, Math.round(total * 0.05));
  const drop = Math.max(1, Math.round(total * 0.1));
  const hold = Math.max(1, total - jump - drop);
  return [
    { duration: `${jump}s`, target: peakVus },
    { duration: `${hold}s`, target: peakVus },
    { duration: `${drop}s`, target: 0 },
  ];
}
