// The offline base, in the service's projection: coastlines and borders (Natural Earth, shipped
// with the server, which projects them), a coordinate grid and the service outline.

import Feature from 'ol/Feature.js';
import GeoJSON from 'ol/format/GeoJSON.js';
import LineString from 'ol/geom/LineString.js';
import {fromExtent} from 'ol/geom/Polygon.js';
import VectorLayer from 'ol/layer/Vector.js';
import Projection from 'ol/proj/Projection.js';
import {get as getProjection} from 'ol/proj.js';
import VectorSource from 'ol/source/Vector.js';
import {Stroke, Style} from 'ol/style.js';

const WEB_MERCATOR = new Set([3857, 102100, 102113, 900913]);
const GEOGRAPHIC = new Set([4326, 4269, 4267, 4258, 4283, 4230, 4617, 4674, 4490, 4148]);

/** The OpenLayers projection of an ArcGIS spatial reference (wkid or WKT). */
export function projectionFor(sr) {
  const wkid = sr && (sr.latestWkid || sr.wkid);
  if (WEB_MERCATOR.has(wkid)) {
    return getProjection('EPSG:3857');
  }
  if (wkid === 4326) {
    return getProjection('EPSG:4326');
  }
  if (wkid) {
    return new Projection({code: `EPSG:${wkid}`, units: GEOGRAPHIC.has(wkid) ? 'degrees' : 'm'});
  }
  const wkt = (sr && sr.wkt) || '';
  // ImageArcGISRest sends a code without a numeric suffix as the spatial reference JSON
  const units = /^\s*GEOG(CS|CRS)\b/i.test(wkt) ? 'degrees' : 'm';
  return new Projection({code: JSON.stringify({wkt}), units});
}

/** [xmin, ymin, xmax, ymax] of a service description, or null when empty or invalid. */
export function extentOf(info) {
  const e = info && info.extent;
  if (!e) {
    return null;
  }
  const box = [e.xmin, e.ymin, e.xmax, e.ymax];
  if (!box.every(Number.isFinite) || !(e.xmax > e.xmin) || !(e.ymax > e.ymin)) {
    return null;
  }
  return box;
}

const landSource = new VectorSource();
const COASTLINE = new Style({stroke: new Stroke({color: 'rgba(40, 70, 100, 0.85)', width: 1.2})});
const BORDER = new Style({stroke: new Stroke({color: 'rgba(120, 90, 110, 0.7)', width: 1, lineDash: [4, 3]})});
export const landLayer = new VectorLayer({
  source: landSource,
  style: (feature) => (feature.get('layer') === 'borders' ? BORDER : COASTLINE),
});
let landKey = null;

function hash(text) {
  let h = 0;
  for (let i = 0; i < text.length; i += 1) {
    h = (Math.imul(h, 31) + text.charCodeAt(i)) | 0;
  }
  return (h >>> 0).toString(36);
}

/** Fetch the coastlines and borders around the service (in its projection) when the service's
 * spatial reference or extent changed. */
export async function loadLand(url, projection, token, key) {
  if (!url || key === landKey) {
    return;
  }
  landKey = key;
  const target = new URL(url, window.location.href);
  if (token) {
    target.searchParams.set('token', token);
  }
  target.searchParams.set('v', hash(key)); // a new URL when the extent or projection changes
  const response = await fetch(target);
  if (key !== landKey) {
    return;
  }
  if (!response.ok) {
    landSource.clear(true);
    landKey = null;
    return;
  }
  const data = await response.json();
  const features = new GeoJSON().readFeatures(data, {
    dataProjection: projection,
    featureProjection: projection,
  });
  landSource.clear(true);
  landSource.addFeatures(features);
  document.body.dataset.basemapLines = String(
    features.reduce((n, f) => n + (f.getGeometry() ? f.getGeometry().getLineStrings().length : 0), 0),
  );
}

const gridSource = new VectorSource();
const outlineSource = new VectorSource();
export const gridLayer = new VectorLayer({
  source: gridSource,
  style: new Style({stroke: new Stroke({color: 'rgba(90, 110, 130, 0.35)', width: 1})}),
  updateWhileInteracting: true,
});
export const outlineLayer = new VectorLayer({
  source: outlineSource,
  style: new Style({stroke: new Stroke({color: '#1f4e79', width: 2, lineDash: [6, 4]})}),
});

function niceStep(span) {
  const raw = span / 8;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) {
    if (m * power >= raw) {
      return m * power;
    }
  }
  return 10 * power;
}

/** Grid lines every "nice" number of map units over the visible area (the offline base). */
export function drawGrid(map) {
  const view = map.getView();
  const size = map.getSize();
  if (!size) {
    return;
  }
  const [xmin, ymin, xmax, ymax] = view.calculateExtent(size);
  const span = Math.max(xmax - xmin, ymax - ymin);
  if (!(span > 0) || !Number.isFinite(span)) {
    return;
  }
  const step = niceStep(span);
  const features = [];
  for (let x = Math.ceil(xmin / step) * step; x <= xmax && features.length < 400; x += step) {
    features.push(new Feature(new LineString([[x, ymin], [x, ymax]])));
  }
  for (let y = Math.ceil(ymin / step) * step; y <= ymax && features.length < 400; y += step) {
    features.push(new Feature(new LineString([[xmin, y], [xmax, y]])));
  }
  gridSource.clear(true);
  gridSource.addFeatures(features);
}

/** Show the outline of the service extent (none for an empty service). */
export function setOutline(extent) {
  outlineSource.clear(true);
  if (extent) {
    outlineSource.addFeature(new Feature(fromExtent(extent)));
  }
}
