// Builds crumby/static/vendor/ from pinned npm packages (see package.json next to this file).
// Run, in tools/vendor/: npm ci && npm run build. Only built assets and their licenses are written;
// node_modules/ is never committed. The output is deterministic for the pinned versions.
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { geoNaturalEarth1, geoPath } from "d3-geo";
import { feature } from "topojson-client";

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const modules = join(here, "node_modules");
const vendor = join(root, "crumby", "static", "vendor");

function copy(pkg, files, dest) {
  mkdirSync(join(vendor, dest), { recursive: true });
  for (const [from, to] of files) copyFileSync(join(modules, pkg, from), join(vendor, dest, to));
}

rmSync(vendor, { recursive: true, force: true });

// uPlot: the charting library (canvas time series), already minified upstream.
copy("uplot", [
  ["dist/uPlot.iife.min.js", "uPlot.iife.min.js"],
  ["dist/uPlot.min.css", "uPlot.min.css"],
  ["LICENSE", "LICENSE"],
], "uplot");

// World map: Natural Earth 1:110m countries from world-atlas, projected once here
// (Natural Earth projection, 960x500) into SVG path strings keyed by ISO alpha-2 code,
// so the browser needs no projection code and nothing is fetched at run time.
const countries = require("i18n-iso-countries");
const topology = JSON.parse(readFileSync(join(modules, "world-atlas", "countries-110m.json")));
const land = feature(topology, topology.objects.countries);
const width = 960, height = 500;
const projection = geoNaturalEarth1().fitExtent([[4, 4], [width - 4, height - 4]], { type: "Sphere" });
const path = geoPath(projection).digits(1);
const shapes = [];
for (const f of land.features) {
  // Kosovo has no ISO numeric code; GeoIP databases report it as XK.
  const alpha2 = f.id ? countries.numericToAlpha2(f.id) : f.properties.name === "Kosovo" ? "XK" : undefined;
  const d = path(f);
  if (!d) continue;
  shapes.push({ id: alpha2 || "", name: f.properties.name, d });
}
shapes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
mkdirSync(join(vendor, "world"), { recursive: true });
writeFileSync(
  join(vendor, "world", "countries-110m.json"),
  JSON.stringify({ width, height, outline: path({ type: "Sphere" }), countries: shapes }),
);
copy("world-atlas", [["LICENSE", "LICENSE.world-atlas"]], "world");
copy("topojson-client", [["LICENSE", "LICENSE.topojson-client"]], "world");
copy("d3-geo", [["LICENSE", "LICENSE.d3-geo"]], "world");
copy("i18n-iso-countries", [["LICENSE", "LICENSE.i18n-iso-countries"]], "world");
writeFileSync(
  join(vendor, "world", "README"),
  "countries-110m.json: Natural Earth 1:110m country outlines (public domain) from the npm\n" +
    "package world-atlas, converted with topojson-client, projected with d3-geo's\n" +
    "geoNaturalEarth1 and keyed by ISO 3166-1 alpha-2 code via i18n-iso-countries.\n" +
    "Produced by tools/vendor/build.mjs (cd tools/vendor && npm ci && npm run build).\n",
);
console.log(`vendor assets written to ${vendor}`);
