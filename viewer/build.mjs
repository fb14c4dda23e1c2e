// Build the viewer bundle into the Python package: src/livemosaic/rest/static/viewer/.
//
//   npm ci && npm run build      writes viewer.js, viewer.css, basemap.json and
//                                third-party-licenses.txt
//   npm run check                fails when the committed bundle differs from a fresh build
//
// The licence file lists every npm package that ends up in the bundle (from esbuild's
// metafile) with the full text of its licence.
import {readFileSync, readdirSync, existsSync, mkdirSync, writeFileSync, mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import * as esbuild from 'esbuild';
import {mesh} from 'topojson-client';

const here = path.dirname(fileURLToPath(import.meta.url));
const target = path.resolve(here, '../src/livemosaic/rest/static/viewer');
const check = process.argv.includes('--check');
const outdir = check ? mkdtempSync(path.join(tmpdir(), 'livemosaic-viewer-')) : target;

const result = await esbuild.build({
  entryPoints: {viewer: path.join(here, 'src/main.js')},
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  outdir,
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
  charset: 'utf8',
});

function packageOf(input) {
  const parts = input.split('/');
  const at = parts.lastIndexOf('node_modules');
  if (at < 0) {
    return null;
  }
  const name = parts[at + 1].startsWith('@') ? `${parts[at + 1]}/${parts[at + 2]}` : parts[at + 1];
  return {name, dir: path.join(here, ...parts.slice(0, at + 1), ...name.split('/'))};
}

function licenceText(dir) {
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(f));
  return file ? readFileSync(path.join(dir, file), 'utf8').trim() : null;
}

const packages = new Map();
for (const output of Object.values(result.metafile.outputs)) {
  for (const input of Object.keys(output.inputs)) {
    const pkg = packageOf(input);
    if (pkg && !packages.has(pkg.name)) {
      packages.set(pkg.name, pkg.dir);
    }
  }
}
const sections = [
  'Third-party software bundled in viewer.js and viewer.css of the livemosaic live viewer.',
  'Built from the viewer/ folder of the livemosaic repository (npm run build).',
];
for (const name of [...packages.keys()].sort()) {
  const dir = packages.get(name);
  const meta = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const text = licenceText(dir);
  if (!text) {
    throw new Error(`${name} has no licence file; add its licence text by hand before shipping`);
  }
  sections.push(`${'='.repeat(78)}\n${name} ${meta.version} — ${meta.license}\n${meta.homepage || ''}\n${'-'.repeat(78)}\n${text}`);
}
// The offline basemap: Natural Earth 1:50m coastlines and land borders (public domain), from
// the world-atlas package, as flat [lon, lat, lon, lat, ...] lines rounded to 0.001 degree.
// The server clips and projects them into each service's spatial reference.
function lines(file, object, filter) {
  const topology = JSON.parse(readFileSync(path.join(here, 'node_modules/world-atlas', file), 'utf8'));
  return mesh(topology, topology.objects[object], filter).coordinates.map((line) =>
    line.flatMap(([x, y]) => [Math.round(x * 1000) / 1000, Math.round(y * 1000) / 1000]));
}
const atlas = JSON.parse(readFileSync(path.join(here, 'node_modules/world-atlas/package.json'), 'utf8'));
const basemap = {
  source: `Natural Earth 1:50m (public domain), from world-atlas ${atlas.version}`,
  coastlines: lines('land-50m.json', 'land'),
  borders: lines('countries-50m.json', 'countries', (a, b) => a !== b),
};
sections.push(`${'='.repeat(78)}\nbasemap.json: Natural Earth 1:50m data, public domain (naturalearthdata.com),\nvia world-atlas ${atlas.version} — ISC\n${'-'.repeat(78)}\n${licenceText(path.join(here, 'node_modules/world-atlas'))}`);

mkdirSync(outdir, {recursive: true});
writeFileSync(path.join(outdir, 'basemap.json'), JSON.stringify(basemap) + '\n');
writeFileSync(path.join(outdir, 'third-party-licenses.txt'), sections.join('\n\n') + '\n');

if (check) {
  let stale = [];
  for (const name of ['viewer.js', 'viewer.css', 'basemap.json', 'third-party-licenses.txt']) {
    const fresh = readFileSync(path.join(outdir, name));
    const committed = path.join(target, name);
    if (!existsSync(committed) || !fresh.equals(readFileSync(committed))) {
      stale.push(name);
    }
  }
  rmSync(outdir, {recursive: true, force: true});
  if (stale.length) {
    console.error(`stale viewer bundle: ${stale.join(', ')}; run npm run build in viewer/`);
    process.exit(1);
  }
  console.log('viewer bundle is up to date');
} else {
  for (const [file, info] of Object.entries(result.metafile.outputs)) {
    console.log(`${path.relative(here, file)}  ${(info.bytes / 1024).toFixed(1)} KiB`);
  }
  console.log(`bundled packages: ${[...packages.keys()].sort().join(', ')}`);
}
