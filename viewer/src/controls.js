// The control panel: variable and dimension pickers, time slider, service facts, update log.

import {extentOf} from './basemap.js';
import {$, state} from './state.js';
import {formatTime, timeStops} from './time.js';

const TIME_DIM = 'stdtime';
const LOG_LENGTH = 12;

let onChange = () => {};

function currentVariable() {
  return state.variables.find((v) => v.name === state.variable) || null;
}

export function renderVariables() {
  const panel = $('lm-variable-panel');
  const select = $('lm-variable');
  if (!state.variables.length) {
    panel.hidden = true;
    state.variable = null;
    state.dims = {};
    return;
  }
  panel.hidden = false;
  if (!currentVariable()) {
    state.variable = state.variables[0].name;
  }
  select.replaceChildren(
    ...state.variables.map((v) => new Option(v.description && v.description !== v.name ? `${v.name} (${v.description})` : v.name, v.name)),
  );
  select.value = state.variable;
  renderDimensions();
}

/** The first value, or for heights and depths (StdZ) the one nearest the surface. */
function defaultDimensionValue(name, values) {
  if (name.toLowerCase() === 'stdz') {
    return values.reduce((best, v) => (Math.abs(v) < Math.abs(best) ? v : best), values[0]);
  }
  return values[0];
}

export function renderDimensions() {
  const holder = $('lm-dimensions');
  const variable = currentVariable();
  const dims = {};
  const rows = [];
  for (const dim of (variable && variable.dimensions) || []) {
    if (dim.name.toLowerCase() === TIME_DIM) {
      continue;
    }
    const values = dim.values || dim.extent || [];
    if (!values.length) {
      continue;
    }
    const kept = values.includes(state.dims[dim.name])
      ? state.dims[dim.name]
      : defaultDimensionValue(dim.name, values);
    dims[dim.name] = kept;
    const select = document.createElement('select');
    select.dataset.dimension = dim.name;
    select.setAttribute('aria-label', dim.name);
    select.replaceChildren(...values.map((v) => new Option(`${v}${dim.unit ? ' ' + dim.unit : ''}`, String(v))));
    select.value = String(kept);
    select.addEventListener('change', () => {
      state.dims[dim.name] = Number(select.value);
      onChange();
    });
    const label = document.createElement('label');
    label.className = 'lm-dimension';
    label.append(`${dim.description || dim.name}: `, select);
    rows.push(label);
  }
  state.dims = dims;
  holder.replaceChildren(...rows);
}

function timeValues() {
  const variable = currentVariable();
  if (variable) {
    const dim = (variable.dimensions || []).find((d) => d.name.toLowerCase() === TIME_DIM);
    return dim ? dim.values || [] : [];
  }
  return state.times;
}

export function renderTime() {
  const panel = $('lm-time-panel');
  const slider = $('lm-time-slider');
  const timeInfo = state.info && state.info.timeInfo;
  const previous = state.stops.stops[state.timeIndex];
  state.stops = timeStops(timeValues(), timeInfo && timeInfo.timeExtent);
  const stops = state.stops.stops;
  state.timeEnabled = stops.length > 0;
  panel.hidden = !state.timeEnabled;
  if (!state.timeEnabled) {
    return;
  }
  const last = stops.length - 1;
  if (state.follow) {
    state.timeIndex = last;
  } else {
    const same = stops.indexOf(previous);
    state.timeIndex = same >= 0 ? same : Math.min(state.timeIndex, last);
  }
  slider.max = String(last);
  slider.value = String(state.timeIndex);
  slider.disabled = state.allTimes;
  const extent = timeInfo && timeInfo.timeExtent ? timeInfo.timeExtent : [stops[0], stops[last]];
  slider.dataset.start = String(extent[0]);
  slider.dataset.end = String(extent[1]);
  slider.dataset.stops = String(stops.length);
  $('lm-time-start').textContent = formatTime(extent[0]);
  $('lm-time-end').textContent = formatTime(extent[1]);
  $('lm-time-all').checked = state.allTimes;
  $('lm-time-follow').checked = state.follow;
  renderTimeLabel();
}

export function renderTimeLabel() {
  const label = $('lm-time-label');
  if (state.allTimes) {
    label.textContent = 'all times';
    return;
  }
  const stops = state.stops.stops;
  const t = stops[state.timeIndex];
  const next = stops[state.timeIndex + 1];
  label.textContent = state.stops.exact || next === undefined ? formatTime(t) : `${formatTime(t)} – ${formatTime(next)}`;
}

export function renderInfo() {
  const info = state.info || {};
  const extent = extentOf(info);
  const timeExtent = info.timeInfo && info.timeInfo.timeExtent;
  const rows = [
    ['version', String(state.generation)],
    ['extent', extent ? extent.map((v) => Number(v).toPrecision(8)).join(', ') : 'empty'],
    ['time extent', timeExtent ? `${formatTime(timeExtent[0])} – ${formatTime(timeExtent[1])}` : 'none'],
    ['pixel size', info.pixelSizeX ? `${Number(info.pixelSizeX).toPrecision(6)} × ${Number(info.pixelSizeY).toPrecision(6)}` : '–'],
    ['bands', `${info.bandCount ?? '–'} (${info.pixelType ?? ''})`],
  ];
  if (state.itemCount !== null) {
    rows.push(['items', String(state.itemCount)]);
  }
  $('lm-info').replaceChildren(
    ...rows.flatMap(([k, v]) => {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      dd.dataset.field = k;
      return [dt, dd];
    }),
  );
  $('lm-generation').textContent = `v${state.generation}`;
  document.body.dataset.generation = String(state.generation);
}

export function addLog(text) {
  const list = $('lm-log');
  const item = document.createElement('li');
  item.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  list.prepend(item);
  while (list.children.length > LOG_LENGTH) {
    list.lastElementChild.remove();
  }
}

export function setStatus(status, detail) {
  state.status = status;
  const el = $('lm-status');
  el.className = `lm-status lm-status-${status}`;
  el.textContent = status;
  el.title = detail || 'notification connection';
  document.body.dataset.status = status;
}

/** Wire the controls; ``changed`` redraws the image after the user picked something. */
export function bindControls(changed) {
  onChange = changed;
  $('lm-variable').addEventListener('change', (event) => {
    state.variable = event.target.value;
    renderDimensions();
    renderTime();
    onChange();
  });
  $('lm-time-slider').addEventListener('input', (event) => {
    state.timeIndex = Number(event.target.value);
    state.follow = state.timeIndex === state.stops.stops.length - 1;
    $('lm-time-follow').checked = state.follow;
    renderTimeLabel();
  });
  $('lm-time-slider').addEventListener('change', () => onChange());
  $('lm-time-all').addEventListener('change', (event) => {
    state.allTimes = event.target.checked;
    $('lm-time-slider').disabled = state.allTimes;
    renderTimeLabel();
    onChange();
  });
  $('lm-time-follow').addEventListener('change', (event) => {
    state.follow = event.target.checked;
    if (state.follow) {
      renderTime();
      onChange();
    }
  });
}
