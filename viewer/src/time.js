// Time stops of the slider and the `time` parameter they select.

const LINEAR_STEPS = 100;

/** ISO-like UTC text of an epoch-ms time (date only when it is midnight). */
export function formatTime(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) {
    return '';
  }
  const iso = new Date(ms).toISOString();
  return iso.endsWith('T00:00:00.000Z') ? iso.slice(0, 10) : iso.replace('.000Z', 'Z');
}

/**
 * The slider's stops: the given distinct times when there are some (exact instants), else
 * LINEAR_STEPS windows over the time extent.
 */
export function timeStops(values, extent) {
  const distinct = [...new Set((values || []).filter((v) => Number.isFinite(v)))].sort(
    (a, b) => a - b,
  );
  if (distinct.length > 0) {
    return {exact: true, stops: distinct};
  }
  if (!extent || extent.length !== 2 || !(extent[1] >= extent[0])) {
    return {exact: true, stops: []};
  }
  const [start, end] = extent;
  if (end === start) {
    return {exact: true, stops: [start]};
  }
  const step = (end - start) / LINEAR_STEPS;
  const stops = [];
  for (let i = 0; i <= LINEAR_STEPS; i++) {
    stops.push(Math.round(start + i * step));
  }
  return {exact: false, stops};
}

/** The exportImage `time` value of stop `index`: an instant, or the window up to the next stop. */
export function timeParam(stops, index) {
  if (!stops.stops.length) {
    return null;
  }
  const i = Math.max(0, Math.min(index, stops.stops.length - 1));
  const t = stops.stops[i];
  if (stops.exact) {
    return String(t);
  }
  const next = i + 1 < stops.stops.length ? stops.stops[i + 1] : t;
  return `${t},${next}`;
}
