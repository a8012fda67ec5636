// Writes k6's end-of-test data as JSON where alumnos bench asked for it.
export function writeSummary(data) {
  const path = __ENV.SUMMARY_PATH || 'summary.json';
  return { [path]: JSON.stringify(data, null, 2) };
}
