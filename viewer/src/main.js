// The livemosaic live viewer: an image service on an OpenLayers map that follows refreshes.
//
// The page embeds its configuration (service name and URLs) as JSON. The map shows the
// service through exportImage in the service's own spatial reference, over an offline base
// (a coordinate grid and the service outline: no tiles from the internet). A WebSocket
// subscription tells the page when the service was refreshed; the page then re-reads the
// service description and redraws the image, extent, time slider and dimension pickers.

import 'ol/ol.css';
import './viewer.css';
import Map from 'ol/Map.js';
import View from 'ol/View.js';
import MousePosition from 'ol/control/MousePosition.js';
import ScaleLine from 'ol/control/ScaleLine.js';
import {defaults as defaultControls} from 'ol/control/defaults.js';
import ImageLayer from 'ol/layer/Image.js';
import ImageArcGISRest from 'ol/source/ImageArcGISRest.js';
import {loadService} from './api.js';
import {
  drawGrid,
  extentOf,
  gridLayer,
  landLayer,
  loadLand,
  outlineLayer,
  projectionFor,
  setOutline,
} from './basemap.js';
import {
  addLog,
  bindControls,
  renderInfo,
  renderTime,
  renderVariables,
  setStatus,
} from './controls.js';
import {loadLegend} from './legend.js';
import {LiveSocket, socketUrl} from './live.js';
import {config, state, token} from './state.js';
import {timeParam} from './time.js';

// -- map ------------------------------------------------------------------------------------------

let imageSource = null;
const imageLayer = new ImageLayer({});
const mousePosition = new MousePosition({
  coordinateFormat: (c) => (c ? `${c[0].toFixed(2)}, ${c[1].toFixed(2)}` : ''),
  className: 'lm-mouse-position',
  placeholder: '',
});
const map = new Map({
  target: 'lm-map',
  layers: [gridLayer, imageLayer, landLayer, outlineLayer],
  controls: defaultControls({attribution: false}).extend([new ScaleLine(), mousePosition]),
});
let programmatic = 0;

function fitTo(extent) {
  programmatic += 1;
  try {
    map.getView().fit(extent, {padding: [16, 16, 16, 16]});
  } finally {
    programmatic -= 1;
  }
}

function newView(projection) {
  const view = new View({projection, center: [0, 0], zoom: 2, showFullExtent: true});
  view.on(['change:center', 'change:resolution'], () => {
    if (!programmatic) {
      state.userMoved = true;
    }
  });
  return view;
}

function exportParams() {
  const params = {format: 'png32', transparent: true, f: 'image', lmv: state.generation};
  if (token) {
    params.token = token;
  }
  const time =
    state.timeEnabled && !state.allTimes ? timeParam(state.stops, state.timeIndex) : null;
  if (time !== null) {
    params.time = time;
  }
  if (state.variable) {
    const definition = [{variableName: state.variable}];
    for (const [dimensionName, value] of Object.entries(state.dims)) {
      definition.push({variableName: state.variable, dimensionName, values: [value], isSlice: true});
    }
    params.mosaicRule = JSON.stringify({multidimensionalDefinition: definition});
  }
  return params;
}

function newImageSource(projection) {
  const source = new ImageArcGISRest({
    url: config.serviceUrl,
    projection,
    ratio: 1,
    params: exportParams(),
    imageLoadFunction: (wrapper, src) => {
      wrapper.lmGeneration = Number(new URL(src, window.location.href).searchParams.get('lmv'));
      wrapper.getImage().src = src;
    },
  });
  source.on('imageloadend', (event) => {
    state.imageLoads += 1;
    state.imageGeneration = Math.max(state.imageGeneration, event.image.lmGeneration || 0);
    document.body.dataset.imageGeneration = String(state.imageGeneration);
  });
  source.on('imageloaderror', () => {
    state.imageErrors += 1;
  });
  return source;
}

/** Set up (or switch) the map for the service's spatial reference. */
function applyProjection(info) {
  const sr = info.spatialReference || (info.extent && info.extent.spatialReference) || {};
  const key = JSON.stringify(sr);
  if (key === state.srKey) {
    return false;
  }
  state.srKey = key;
  const projection = projectionFor(sr);
  map.setView(newView(projection));
  imageSource = newImageSource(projection);
  imageLayer.setSource(imageSource);
  state.userMoved = false;
  return true;
}

/** Draw the service outline; fit the view to a new extent unless the user has moved the map. */
function applyExtent(info, previous) {
  const extent = extentOf(info);
  setOutline(extent);
  if (!extent) {
    return;
  }
  const changed = !previous || previous.some((v, i) => v !== extent[i]);
  if (!previous || (changed && !state.userMoved)) {
    fitTo(extent);
  }
}

function redrawImage() {
  if (imageSource) {
    imageSource.setParams(exportParams());
  }
}

// -- refresh --------------------------------------------------------------------------------------

async function reloadOnce() {
  const {info, variables, times, version} = await loadService(config.serviceUrl, token);
  const previousExtent = extentOf(state.info);
  const hadInfo = state.info !== null;
  state.info = info;
  state.variables = variables;
  state.times = times;
  state.generation = Math.max(version || 0, state.generation);
  state.reloads += 1;
  state.error = null;
  const switched = applyProjection(info);
  applyExtent(info, switched || !hadInfo ? null : previousExtent);
  renderVariables();
  renderTime();
  renderInfo();
  drawGrid(map);
  redrawImage();
  loadLegend(config.serviceUrl, token);
  const landKey = `${state.srKey}|${extentOf(info)}`;
  loadLand(config.basemapUrl, map.getView().getProjection(), token, landKey).catch((error) => {
    document.body.dataset.basemapError = String(error); // the map works without it
  });
}

let reloading = null;
let again = false;
let retries = 0;

/** Re-read the service and redraw; calls made meanwhile are folded into one more pass. */
function reload() {
  if (reloading) {
    again = true;
    return reloading;
  }
  reloading = (async () => {
    do {
      again = false;
      try {
        await reloadOnce();
      } catch (err) {
        state.error = String(err.message || err);
        addLog(`could not read the service: ${state.error}`);
      }
    } while (again);
  })().finally(() => {
    reloading = null;
    // another server process may not have swapped yet: ask again shortly
    if (state.generation < state.wanted && retries < 10) {
      retries += 1;
      setTimeout(reload, 500);
    } else {
      retries = 0;
    }
  });
  return reloading;
}

function sameService(name) {
  return typeof name === 'string' && name.toLowerCase() === config.service.toLowerCase();
}

const socket = new LiveSocket(socketUrl(config.wsPath, token), [config.service], {
  status: setStatus,
  subscribed: (message) => {
    const versions = message.versions || {};
    const key = Object.keys(versions).find(sameService);
    if (key !== undefined && versions[key] > state.generation) {
      state.wanted = Math.max(state.wanted, versions[key]);
      addLog(`version ${versions[key]} published while disconnected`);
      reload();
    }
  },
  serviceRefreshed: (message) => {
    if (!sameService(message.service)) {
      return;
    }
    state.refreshMessages += 1;
    state.itemCount = message.itemCount;
    const changed = (message.changed || []).join(', ') || 'no summary change';
    const items = message.itemsAdded || message.itemsRemoved ? ` (+${message.itemsAdded} −${message.itemsRemoved} items)` : '';
    addLog(`v${message.generation}: ${changed}${items}`);
    if (message.generation > state.generation) {
      state.wanted = Math.max(state.wanted, message.generation);
      reload();
    } else {
      renderInfo();
    }
  },
  itemsChanged: (message) => {
    if (!sameService(message.service)) {
      return;
    }
    // new items inside the published extent: no refresh was needed, but the image changed
    state.itemsChangedMessages = (state.itemsChangedMessages || 0) + 1;
    addLog(`+${message.itemsAdded} −${message.itemsRemoved} items (v${message.generation})`);
    redrawImage();
  },
  lagging: (message) => {
    addLog(`${message.skipped} notifications skipped; re-reading the service`);
    reload();
  },
  error: (message) => {
    addLog(`server: ${message.message}`);
    if (message.code === 499 || message.code === 403) {
      setStatus('denied', message.message);
    }
  },
});

map.on('moveend', () => drawGrid(map));
bindControls(redrawImage);
window.livemosaicViewer = {
  state,
  map,
  socket,
  reload,
  /** Pixel [x, y] within the map element of a map coordinate (service spatial reference). */
  pixelOf: (x, y) => map.getPixelFromCoordinate([x, y]),
};

reload().then(() => socket.start());