// esri-leaflet: an imageMapLayer over the image service on a Leaflet map (Web Mercator).
// A token is the layer's `token` option, as esri-leaflet documents it. The layer sends
// bbox=xmin,ymax,xmax,ymin (Leaflet's pixel-bounds corners).
import L from 'leaflet';
import 'leaflet/dist/leaflet.css';
import {imageMapLayer} from 'esri-leaflet';
import {drawn, failed, log, settings} from './common.js';

const [west, south, east, north] = settings.bounds;
const map = L.map('map', {zoomControl: false, attributionControl: false, fadeAnimation: false});
map.fitBounds([[south, west], [north, east]]);
const options = {url: settings.service};
if (settings.token) {
  options.token = settings.token;
}
const layer = imageMapLayer(options);
layer.on('load', () => {
  log('load');
  drawn();
});
layer.on('requesterror', (event) => failed(event.message || 'request error'));
layer.on('authenticationrequired', () => failed('authentication required'));
layer.on('error', (event) => failed(event.message || 'image error'));
layer.addTo(map);
window.lmMap = map;
