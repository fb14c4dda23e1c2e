// ArcGIS Maps SDK for JavaScript: an ImageryLayer on a MapView (no basemap, no widgets, no
// portal). Only Map, MapView and ImageryLayer are imported, so the bundle holds those and
// what they load. A token is registered with the IdentityManager for the server, as the SDK
// does for a token obtained elsewhere; the SDK then adds it to every request there.
import esriConfig from '@arcgis/core/config.js';
import IdentityManager from '@arcgis/core/identity/IdentityManager.js';
import ImageryLayer from '@arcgis/core/layers/ImageryLayer.js';
import Map from '@arcgis/core/Map.js';
import MapView from '@arcgis/core/views/MapView.js';
import * as reactiveUtils from '@arcgis/core/core/reactiveUtils.js';
import {drawn, failed, log, settings} from './common.js';

esriConfig.assetsPath = new URL('./arcgis-assets', window.location.href).href;
esriConfig.request.timeout = 30000;

async function main() {
  if (settings.token) {
    const root = settings.service.slice(0, settings.service.indexOf('/rest/services/') + 15);
    IdentityManager.registerToken({server: root, token: settings.token, ssl: false});
  }
  const layer = new ImageryLayer({url: settings.service});
  await layer.load();
  log(`loaded: ${layer.title}, ${layer.bandCount} bands`);
  const view = new MapView({
    container: 'map',
    map: new Map({layers: [layer]}),
    extent: layer.fullExtent,
    ui: {components: []},
  });
  window.lmView = view;
  await view.whenLayerView(layer);
  await reactiveUtils.whenOnce(() => !view.updating);
  log('view settled');
  drawn();
}

main().catch(failed);
