// What the page shows, shared by the modules of the viewer.

/** The page's configuration, embedded by the server as JSON. */
export const config = JSON.parse(document.getElementById('livemosaic-config').textContent);
/** The token of a secured service, from the page URL (?token=…). */
export const token = new URLSearchParams(window.location.search).get('token');
/** An element of the page by id. */
export const $ = (id) => document.getElementById(id);
/** What the page currently shows; also read by tests through window.livemosaicViewer. */
export const state = {
  service: config.service,
  generation: 0,
  wanted: 0,
  info: null,
  variables: [],
  times: [],
  stops: {exact: true, stops: []},
  timeIndex: 0,
  timeEnabled: false,
  allTimes: false,
  follow: true,
  variable: null,
  dims: {},
  itemCount: null,
  reloads: 0,
  refreshMessages: 0,
  imageLoads: 0,
  imageErrors: 0,
  imageGeneration: 0,
  userMoved: false,
  status: 'connecting',
  srKey: null,
  error: null,
};

