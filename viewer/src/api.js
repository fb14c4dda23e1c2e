// Reading the image service: its description, multidimensional info and the time stops.

/** Add parameters (skipping null/undefined) to a URL path. */
export function withParams(path, params) {
  const url = new URL(path, window.location.href);
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined) {
      url.searchParams.set(key, String(value));
    }
  }
  return url.toString();
}

/**
 * GET a JSON resource of the service; ArcGIS error envelopes become exceptions. Returns the
 * body and the published version the server answered from (X-LiveMosaic-Service-Version).
 */
export async function fetchJson(path, params, token) {
  const all = {...params, f: 'json'};
  if (token) {
    all.token = token;
  }
  const response = await fetch(withParams(path, all), {cache: 'no-store'});
  if (!response.ok) {
    throw new Error(`${path}: HTTP ${response.status}`);
  }
  const body = await response.json();
  if (body && body.error) {
    const err = new Error(body.error.message || 'request failed');
    err.code = body.error.code;
    err.details = body.error.details || [];
    throw err;
  }
  const version = Number(response.headers.get('X-LiveMosaic-Service-Version')) || 0;
  return {body, version};
}

/** The JSON body of a service resource (see fetchJson). */
export async function getJson(path, params, token) {
  return (await fetchJson(path, params, token)).body;
}

/** Everything the viewer shows about a service, read fresh. */
export async function loadService(serviceUrl, token) {
  const {body: info, version} = await fetchJson(serviceUrl, {}, token);
  let variables = [];
  if (info.hasMultidimensions) {
    try {
      const md = await getJson(
        `${serviceUrl}/multidimensionalInfo`,
        {returnDimensionValues: 'always'},
        token,
      );
      variables = (md.multidimensionalInfo && md.multidimensionalInfo.variables) || [];
    } catch (err) {
      console.warn('livemosaic viewer: multidimensionalInfo failed', err);
    }
  }
  let times = [];
  const timeInfo = info.timeInfo;
  if (timeInfo && timeInfo.startTimeField && variables.length === 0) {
    times = await distinctTimes(serviceUrl, timeInfo.startTimeField, token);
  }
  return {info, variables, times, version};
}

/** The distinct acquisition times of the catalog items (sorted epoch ms), or [] if unknown. */
export async function distinctTimes(serviceUrl, field, token) {
  try {
    const body = await getJson(
      `${serviceUrl}/query`,
      {
        where: '1=1',
        outFields: field,
        returnGeometry: false,
        returnDistinctValues: true,
        // newest first, so a page limit keeps the latest times
        orderByFields: `${field} DESC`,
      },
      token,
    );
    const values = new Set();
    for (const feature of body.features || []) {
      const attrs = feature.attributes || {};
      const key = Object.keys(attrs).find((k) => k.toLowerCase() === field.toLowerCase());
      const value = key === undefined ? null : attrs[key];
      if (typeof value === 'number' && Number.isFinite(value)) {
        values.add(value);
      }
    }
    return [...values].sort((a, b) => a - b);
  } catch (err) {
    console.warn('livemosaic viewer: distinct times failed', err);
    return [];
  }
}
