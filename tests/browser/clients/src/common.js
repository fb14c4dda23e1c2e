// What every client page shares: its settings from the query string, and the state the test
// reads (window.lmClient): 'loading' until the layer has loaded and drawn, then 'drawn', or
// 'error' with a message.
export const query = new URLSearchParams(window.location.search);
export const settings = {
  service: query.get('service'),
  token: query.get('token') || null,
  // [west, south, east, north] in degrees, for the clients whose map is in Web Mercator
  bounds: (query.get('bounds') || '').split(',').filter(Boolean).map(Number),
};

export const state = {status: 'loading', error: null, events: []};
window.lmClient = state;

export function log(message) {
  state.events.push(message);
}

export function drawn() {
  if (state.status === 'loading') {
    state.status = 'drawn';
  }
}

export function failed(error) {
  state.status = 'error';
  state.error = String((error && (error.message || error.details)) || error);
  log(`error: ${state.error}`);
}

window.addEventListener('error', (event) => failed(event.message));
window.addEventListener('unhandledrejection', (event) => failed(event.reason));
