// The legend panel: the service's `legend` resource, shown for thematic services (a swatch per
// class) and single-band stretched ones (a colour bar from Low to High); none for RGB images.

import {getJson} from './api.js';

const byId = (id) => document.getElementById(id);

function swatch(entry) {
  const img = document.createElement('img');
  img.src = `data:${entry.contentType || 'image/png'};base64,${entry.imageData}`;
  img.width = entry.width || 20;
  img.height = entry.height || 20;
  img.alt = '';
  return img;
}

function classRows(entries) {
  return entries.map((entry) => {
    const row = document.createElement('div');
    row.className = 'lm-legend-row';
    row.append(swatch(entry), document.createTextNode(` ${entry.label}`));
    return row;
  });
}

function colourBar(entries) {
  // entries are High then Low, each a solid swatch: draw the ramp between their colours
  const bar = document.createElement('div');
  bar.className = 'lm-legend-bar';
  const labels = document.createElement('div');
  labels.className = 'lm-legend-bar-labels';
  for (const entry of entries) {
    const label = document.createElement('span');
    label.textContent = entry.label;
    labels.append(label);
  }
  const wrap = document.createElement('div');
  wrap.className = 'lm-legend-stretch';
  wrap.append(bar, labels);
  return [wrap];
}

/** Read the legend and show it (hidden when the service is an RGB composite or has none). */
export async function loadLegend(serviceUrl, token) {
  const panel = byId('lm-legend-panel');
  const box = byId('lm-legend');
  let layer = null;
  try {
    const body = await getJson(`${serviceUrl}/legend`, {}, token);
    layer = (body.layers || [])[0] || null;
  } catch {
    layer = null;
  }
  const type = layer && layer.legendType;
  const entries = (layer && layer.legend) || [];
  if (!entries.length || (type !== 'Unique Values' && type !== 'Stretched')) {
    panel.hidden = true;
    document.body.dataset.legend = 'none';
    return;
  }
  box.replaceChildren(...(type === 'Stretched' ? colourBar(entries) : classRows(entries)));
  panel.hidden = false;
  document.body.dataset.legend = type;
}
