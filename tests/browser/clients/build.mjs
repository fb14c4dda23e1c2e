// Build the browser-client test pages into dist/ (not committed): one page per client, each
// bundling the client library from node_modules (installed with `npm ci` from package-lock.json).
//
//   node build.mjs     builds dist/ unless it is up to date (same lock file, sources, build)
//
// ArcGIS Maps SDK for JavaScript: only Map, MapView and ImageryLayer are imported, and the
// SDK's runtime assets (workers, styles) are served from node_modules through the
// dist/arcgis-assets link instead of being copied.
import {createHash} from 'node:crypto';
import {existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, 'dist');
const clients = ['arcgis', 'leaflet', 'openlayers'];

function digest() {
  const hash = createHash('sha256');
  const files = ['package-lock.json', 'build.mjs', 'page.html', ...readdirSync(path.join(here, 'src')).sort().map((f) => `src/${f}`)];
  for (const file of files) {
    hash.update(file).update(readFileSync(path.join(here, file)));
  }
  return hash.digest('hex');
}

const stamp = path.join(dist, 'build-stamp');
const wanted = digest();
if (existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted) {
  console.log('browser clients are up to date');
  process.exit(0);
}
rmSync(dist, {recursive: true, force: true});
mkdirSync(dist, {recursive: true});
// Parts of the SDK a 2D MapView with an ImageryLayer never runs, reached only through dynamic
// imports (other layer types, 3D views, widgets, charts, Arcade): such imports load an empty
// module instead of bundling them. A page that needed one would fail its test.
const unused = new RegExp([
  String.raw`[\/]@arcgis[\/]core[\/]`,
  '(',
  String.raw`views[\/]3d|layers[\/]video|widgets|arcade|webscene|smartMapping|applications`,
  String.raw`|chunks[\/](chartUtilsAm5|LineSeries)`,
  // every other layer type, and the 2D views of layers the page does not have
  String.raw`|layers[\/](?!ImageryLayer\.js)[A-Za-z]+Layer\.js`,
  String.raw`|views[\/]2d[\/]layers[\/](?!(Imagery|Graphics|Group|BaseDynamic)Layer)[A-Za-z0-9]+\.js`,
  String.raw`)([\/.]|$)`,
].join(''));
const stubUnused = {
  name: 'stub-unused-sdk-parts',
  setup(build) {
    build.onResolve({filter: /^\./}, (args) => {
      const full = path.resolve(args.resolveDir, args.path);
      return args.kind === 'dynamic-import' && unused.test(full) ? {path: full, namespace: 'unused'} : undefined;
    });
    build.onLoad({filter: /.*/, namespace: 'unused'}, () => ({contents: 'export {};', loader: 'js'}));
  },
};
const result = await esbuild.build({
  entryPoints: Object.fromEntries(clients.map((c) => [c, path.join(here, 'src', `${c}.js`)])),
  bundle: true,
  minify: true,
  splitting: true,
  format: 'esm',
  target: ['es2022'],
  outdir: dist,
  metafile: true,
  loader: {'.png': 'file', '.svg': 'file'},
  plugins: [stubUnused],
  logLevel: 'warning',
});
symlinkSync(path.join(here, 'node_modules/@arcgis/core/assets'), path.join(dist, 'arcgis-assets'), 'dir');
writeFileSync(path.join(dist, 'arcgis.css'), '@import url("arcgis-assets/esri/themes/light/main.css");\n');
const template = readFileSync(path.join(here, 'page.html'), 'utf8');
for (const client of clients) {
  writeFileSync(path.join(dist, `${client}.html`), template.replaceAll('CLIENT', client));
}
let total = 0;
for (const info of Object.values(result.metafile.outputs)) {
  total += info.bytes;
}
writeFileSync(stamp, wanted);
console.log(`browser clients built: ${Object.keys(result.metafile.outputs).length} files, ${(total / 1048576).toFixed(1)} MiB`);
