// OpenLayers: an ImageArcGISRest source over the image service, in a Web Mercator view.
// A token travels as a request parameter (params.token), as OpenLayers users pass it.
import Map from 'ol/Map.js';
import View from 'ol/View.js';
import ImageLayer from 'ol/layer/Image.js';
import ImageArcGISRest from 'ol/source/ImageArcGISRest.js';
import {transformExtent} from 'ol/proj.js';
import 'ol/ol.css';
import {drawn, failed, log, settings} from './common.js';

const params = {};
if (settings.token) {
  params.token = settings.token;
}
const source = new ImageArcGISRest({url: settings.service, params, ratio: 1});
source.on('imageloadend', () => {
  log('imageloadend');
  drawn();
});
source.on('imageloaderror', () => failed('exportImage failed to load'));
const map = new Map({
  target: 'map',
  layers: [new ImageLayer({source})],
  view: new View({center: [0, 0], zoom: 2}),
});
map.getView().fit(transformExtent(settings.bounds, 'EPSG:4326', 'EPSG:3857'));
window.lmMap = map;
