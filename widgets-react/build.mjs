// Bundle src/widget.tsx into ../recsys_nb/static/widget.js + widget.css (one ESM file,
// one CSS file). `node build.mjs` minifies; `--dev` adds inline sourcemaps; `--watch`
// rebuilds on change (pair it with ANYWIDGET_HMR=1 in the notebook).
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";

const dev = process.argv.includes("--dev");
const watch = process.argv.includes("--watch");
const outdir = fileURLToPath(new URL("../recsys_nb/static/", import.meta.url));

const options = {
  entryPoints: { widget: fileURLToPath(new URL("src/widget.tsx", import.meta.url)) },
  bundle: true,
  format: "esm",
  target: "es2020",
  jsx: "automatic",
  outdir,
  minify: !dev,
  sourcemap: dev ? "inline" : false,
  define: { "process.env.NODE_ENV": JSON.stringify(dev ? "development" : "production") },
  logLevel: "info",
};

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
