// Drive Debian's Chromium (playwright-core, no downloaded browsers) through a real
// JupyterLab: open a notebook that builds recsys_nb.RecommenderWidget, run all cells, then
// either check the widget end to end (mode "e2e", tests/ui/test_jupyterlab.py), check the
// comparison view linked to the latent map (mode "compare", test_jupyterlab_compare.py) or
// time clicks (mode "bench", benchmarks/widget_latency.py). Prints what it saw as one JSON line
// on stdout; progress goes to stderr (shown when a step fails).
//
// Usage: node drive_jupyterlab.mjs CONFIG.json
//   CONFIG: {mode, url, k, screenshot?, widget_shot?, image?, clicks?, warmup?, cells?,
//            timeout_ms?}  (WIDGET_DIR: where node_modules is; CHROMIUM: the browser)
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import path from "node:path";

const require = createRequire(path.join(process.env.WIDGET_DIR, "package.json"));
const { chromium } = require("playwright-core");
const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const TIMEOUT = config.timeout_ms ?? 60000;
const started = Date.now();
const log = (msg) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${msg}\n`);

/** Run `fn`; on failure say which step failed and what the widget showed then. */
async function step(name, fn, page) {
  log(name);
  try {
    return await fn();
  } catch (err) {
    let shown = "";
    try {
      shown = JSON.stringify(await page.evaluate(describe, null));
    } catch {
      shown = "(page not readable)";
    }
    throw new Error(`step "${name}" failed: ${err.message.split("\n")[0]}\nthe page showed: ${shown}`);
  }
}

// What the widget(s) on the page show (runs in the page).
function describe(rootIndex) {
  const roots = [...document.querySelectorAll(".rnb-root")];
  const one = (root) => ({
    query: root.querySelector(".rnb-query-card")?.dataset.id ?? null,
    busy: root.querySelector(".rnb-panel")?.getAttribute("aria-busy"),
    recs: [...root.querySelectorAll(".rnb-rec")].map((b) => ({
      id: Number(b.dataset.id),
      alt: b.querySelector("img")?.alt ?? null,
      loaded: !!b.querySelector("img")?.complete,
      text: b.textContent,
    })),
    grid: root.querySelectorAll(".rnb-grid button.rnb-product").length,
    status: root.querySelector(".rnb-status")?.textContent ?? null,
    trail: [...root.querySelectorAll("[data-trail]")].map((b) => b.textContent),
  });
  if (rootIndex !== null && rootIndex !== undefined) return roots[rootIndex] ? one(roots[rootIndex]) : null;
  return {
    widgets: roots.map(one),
    kernel: document.querySelector(".jp-Notebook-ExecutionIndicator")?.getAttribute("data-status") ?? null,
    kernelName: document.querySelector(".jp-NotebookPanel-toolbar .jp-KernelName, .jp-Toolbar-kernelName")?.textContent ?? null,
    outputs: [...document.querySelectorAll(".jp-Cell .jp-OutputArea-output")].map((o) => o.textContent.slice(0, 300)),
    dialogs: [...document.querySelectorAll(".jp-Dialog")].map((d) => d.textContent.slice(0, 300)),
  };
}

// Resolves once widget `rootIndex` shows `query` with k loaded, decoded recommendation
// images and no request pending, and the frame after the one that found them so has begun
// (they are painted). Returns performance.now() then: that frame's start, or when the
// images finished decoding if later. Runs in the page.
function whenPainted([rootIndex, query, k, timeoutMs]) {
  return new Promise((resolve, reject) => {
    const deadline = performance.now() + timeoutMs;
    const check = async () => {
      const root = document.querySelectorAll(".rnb-root")[rootIndex];
      const card = root?.querySelector(".rnb-query-card");
      const busy = root?.querySelector(".rnb-panel")?.getAttribute("aria-busy") === "true";
      const imgs = root ? [...root.querySelectorAll(".rnb-rec img")] : [];
      if (card?.dataset.id === String(query) && !busy && imgs.length === k && imgs.every((i) => i.complete && i.naturalWidth > 0)) {
        // Painted: the images decoded and the next frame produced (whichever comes last).
        const frame = new Promise((done) => requestAnimationFrame(() => done(performance.now())));
        try {
          await Promise.all(imgs.map((i) => i.decode()));
        } catch {
          /* an image replaced meanwhile: check again */
          return requestAnimationFrame(check);
        }
        resolve(Math.max(await frame, performance.now()));
        return;
      }
      if (performance.now() > deadline) {
        reject(new Error(`timed out after ${timeoutMs} ms waiting for query ${query} and ${k} recommendation images`));
        return;
      }
      requestAnimationFrame(check);
    };
    check();
  });
}

/** page.waitForFunction, accepting JupyterLab's "Select Kernel" dialog if it comes up. */
async function waitFor(page, fn, arg, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  const dialog = page.locator(".jp-Dialog", { hasText: "Select Kernel" });
  for (;;) {
    if (await dialog.count()) {
      log("accept the Select Kernel dialog");
      await dialog.locator(".jp-mod-accept").click();
    }
    try {
      return await page.waitForFunction(fn, arg, { timeout: Math.min(1000, Math.max(1, deadline - Date.now())) });
    } catch (err) {
      if (Date.now() >= deadline) throw new Error(`timed out after ${timeout} ms`);
    }
  }
}

async function openAndRunAll(page) {
  await step("open the notebook", () => page.goto(config.url, { timeout: TIMEOUT }), page);
  await step(
    "wait for the notebook and its kernel",
    async () => {
      await page.locator(".jp-Notebook .jp-Cell").first().waitFor({ timeout: TIMEOUT });
      await waitFor(page, () => {
        const name = document.querySelector(".jp-NotebookPanel-toolbar .jp-KernelName, .jp-Toolbar-kernelName")?.textContent ?? "";
        const status = document.querySelector(".jp-Notebook-ExecutionIndicator")?.getAttribute("data-status");
        return /python/i.test(name) && status === "idle";
      });
    },
    page,
  );
  await step(
    "Run > Run All Cells",
    async () => {
      await page.locator(".lm-MenuBar-itemLabel", { hasText: /^Run$/ }).click();
      await page.locator(".lm-Menu-itemLabel", { hasText: /^Run All Cells$/ }).click();
    },
    page,
  );
  const cells = config.cells ?? 1;
  await step(
    `wait for ${cells} widget grid(s) with loaded thumbnails`,
    () =>
      waitFor(
        page,
        (n) => {
          const roots = [...document.querySelectorAll(".rnb-root")];
          return (
            roots.length >= n &&
            roots.every((r) => {
              const imgs = [...r.querySelectorAll(".rnb-grid img")];
              return imgs.length >= 3 && imgs.every((i) => i.complete && i.naturalWidth > 0);
            })
          );
        },
        cells,
      ),
    page,
  );
}

/** Text of a cell's output area once it contains `pattern`. */
async function runCellAndRead(page, index, pattern) {
  const cell = page.locator(".jp-Notebook .jp-Cell").nth(index);
  await cell.locator(".jp-InputArea-editor").click();
  await page.keyboard.press("Control+Enter");
  const output = cell.locator(".jp-OutputArea-output");
  await output.filter({ hasText: pattern }).first().waitFor({ timeout: TIMEOUT });
  return (await output.allTextContents()).join("\n");
}

async function e2e(page, out) {
  const k = config.k;
  await openAndRunAll(page);
  const root = page.locator(".rnb-root").first();
  const products = root.locator(".rnb-grid button.rnb-product");
  out.grid = await products.evaluateAll((bs) => bs.map((b) => ({ id: Number(b.dataset.id), alt: b.querySelector("img")?.alt })));
  out.before = await step("read w.selected before the click", () => runCellAndRead(page, 1, /selected: /), page);

  const third = out.grid[2].id;
  await step("click the third product", () => products.nth(2).click(), page);
  await step(
    `wait for query ${third} and ${k} recommendation images`,
    () => page.evaluate(whenPainted, [0, third, k, TIMEOUT]),
    page,
  );
  out.click = await page.evaluate(describe, 0);
  out.after = await step(
    "read w.selected in the kernel",
    () => runCellAndRead(page, 1, new RegExp(`selected: ${third}\\b`)),
    page,
  );
  await root.evaluate((el) => el.scrollIntoView({ block: "start" }));
  if (config.screenshot) await page.screenshot({ path: config.screenshot });
  if (config.widget_shot) await root.screenshot({ path: config.widget_shot });

  // Drop a catalogue image file onto the widget (a DataTransfer holding a File, as a
  // drag from the desktop gives).
  const bytes = readFileSync(config.image).toString("base64");
  await step(
    "drop the image file",
    () =>
      root.evaluate(
        (el, [b64, name]) => {
          const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const transfer = new DataTransfer();
          transfer.items.add(new File([data], name, { type: "image/jpeg" }));
          for (const type of ["dragenter", "dragover", "drop"]) {
            el.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: transfer }));
          }
        },
        [bytes, path.basename(config.image)],
      ),
    page,
  );
  await step(
    `wait for the dropped image's ${k} recommendation images`,
    () => page.evaluate(whenPainted, [0, "image", k, TIMEOUT]),
    page,
  );
  out.image = await page.evaluate(describe, 0);
  out.after_image = await step("read w.selected after the drop", () => runCellAndRead(page, 1, /selected: None\b.*image/s), page);
}

// Lasso a region of the linked map, check the widget's grid follows, click a product of it
// and wait for every compared row's pictures; the kernel's side is read from cell 1.
async function compare(page, out) {
  const k = config.k;
  await openAndRunAll(page);
  out.before = await step("read the kernel's state", () => runCellAndRead(page, 1, /STATE /), page);
  const plot = page.locator(".js-plotly-plot").first();
  const area = plot.locator(".nsewdrag").first();
  await step("wait for the map", () => area.waitFor({ timeout: TIMEOUT }), page);
  await plot.scrollIntoViewIfNeeded();
  const box = await area.boundingBox();
  // A lasso around the middle of the plot: a polygon of 24 points on an ellipse.
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  const [rx, ry] = [box.width * 0.3, box.height * 0.3];
  await page.evaluate(() => (window.__rnbGridBefore = document.querySelector(".rnb-root .rnb-status")?.textContent));
  await step(
    "lasso the middle of the map",
    async () => {
      await page.mouse.move(cx + rx, cy);
      await page.mouse.down();
      for (let i = 1; i <= 24; i++) {
        const a = (2 * Math.PI * i) / 24;
        await page.mouse.move(cx + rx * Math.cos(a), cy + ry * Math.sin(a), { steps: 2 });
      }
      await page.mouse.up();
    },
    page,
  );
  const root = page.locator(".rnb-root").first();
  await step(
    "wait for the widget's grid to show the selection",
    () =>
      waitFor(page, () => {
        const status = document.querySelector(".rnb-root .rnb-status")?.textContent ?? "";
        const imgs = [...document.querySelectorAll(".rnb-root .rnb-grid img")];
        return /\d+ products?/.test(status) && imgs.length > 0 && imgs.every((i) => i.complete) && window.__rnbGridBefore !== status;
      }),
    page,
  );
  out.grid = await root.locator(".rnb-grid button.rnb-product").evaluateAll((bs) => bs.map((b) => Number(b.dataset.id)));
  out.status = await root.locator(".rnb-status").textContent();
  out.selected = await step("read the selection in the kernel", () => runCellAndRead(page, 1, /STATE .*"subset": \[/), page);

  const first = root.locator(".rnb-grid button.rnb-product").first();
  const id = Number(await first.getAttribute("data-id"));
  await root.scrollIntoViewIfNeeded();
  await step(`click product ${id}`, () => first.click(), page);
  await step(
    `wait for every compared row's ${k} pictures`,
    () =>
      waitFor(
        page,
        ([query, k]) => {
          const root = document.querySelector(".rnb-root");
          const rows = [...root.querySelectorAll(".rnb-compare [data-row]")];
          return (
            root.querySelector(".rnb-query-card")?.dataset.id === String(query) &&
            rows.length >= 2 &&
            rows.every((r) => {
              const imgs = [...r.querySelectorAll(".rnb-rec img")];
              return imgs.length === k && imgs.every((i) => i.complete && i.naturalWidth > 0);
            })
          );
        },
        [id, k],
      ),
    page,
  );
  out.clicked = id;
  out.rows = await root.locator(".rnb-compare [data-row]").evaluateAll((rows) =>
    rows.map((r) => ({
      name: r.dataset.row,
      ids: [...r.querySelectorAll(".rnb-rec")].map((b) => Number(b.dataset.id)),
      same: [...r.querySelectorAll(".rnb-rec")].map((b) => [...b.querySelectorAll("[data-same]")].map((m) => m.dataset.same)),
      shares: [...r.querySelectorAll("[data-share]")].map((s) => s.textContent),
    })),
  );
  out.after = await step("read the kernel's state after the click", () => runCellAndRead(page, 1, new RegExp(`"query": ${id}\\b`)), page);
  if (config.widget_shot) {
    await page.setViewportSize({ width: 1400, height: 1900 });
    await root.evaluate((el) => el.scrollIntoView({ block: "start" }));
    await page.mouse.move(0, 0);
    await root.locator(".rnb-compare").screenshot({ path: config.widget_shot });
  }
  if (config.screenshot) await page.screenshot({ path: config.screenshot });
}

async function bench(page, out) {
  const k = config.k;
  await openAndRunAll(page);
  await page.evaluate(() => {
    window.__long = [];
    new PerformanceObserver((l) => window.__long.push(...l.getEntries().map((e) => [e.startTime, e.duration, e.name]))).observe({ type: "longtask" });
  });
  out.runs = [];
  for (let w = 0; w < config.cells; w++) {
    const root = page.locator(".rnb-root").nth(w);
    await root.scrollIntoViewIfNeeded();
    const times = [];
    let current = null;
    for (let n = 0; n < config.warmup + config.clicks; n++) {
      // The first click: a grid product; then a recommendation (a walk through the catalogue).
      const target =
        current === null
          ? root.locator(".rnb-grid button.rnb-product").nth(n % 24)
          : root.locator(".rnb-rec").nth((n * 7) % k);
      const id = Number(await target.getAttribute("data-id"));
      await target.scrollIntoViewIfNeeded();
      // A person looks at the answer before the next click (config.think_ms, 0 by default).
      if (config.think_ms) await page.waitForTimeout(config.think_ms);
      // t0: the press's own timestamp (when Chromium received the input; the widget acts on
      // the press, so the click's release is later and would flatter it).
      await page.evaluate(() => {
        window.__t0 = null;
        document.addEventListener(
          "pointerdown",
          (e) => {
            window.__t0 = e.timeStamp;
            performance.mark("rnb:press-handled");
          },
          { capture: true, once: true },
        );
      });
      // The watcher is armed before the click: t1 is when the page showed the answer, not
      // when playwright got round to asking.
      const painted = page.evaluate(whenPainted, [w, id, k, TIMEOUT]);
      await target.click();
      const t1 = await step(`click ${n + 1} (widget ${w}, product ${id})`, () => painted, page);
      const t0 = await page.evaluate(() => window.__t0);
      if (n >= config.warmup) {
        times.push(t1 - t0);
        // Where the time went: the widget's performance marks after t0 (ms from t0).
        const marks = await page.evaluate((t) => {
          const m = performance.getEntriesByType("mark").filter((e) => e.startTime >= t && e.name.startsWith("rnb:"));
          performance.clearMarks();
          // Main-thread tasks over 50 ms during the click (the page could not answer then).
          const long = window.__long.filter((e) => e[0] + e[1] >= t).reduce((sum, e) => sum + e[1], 0);
          window.__long = [];
          return { marks: m.map((e) => [e.name, e.startTime - t]), long };
        }, t0);
        (out.marks ??= []).push({ widget: w, total: t1 - t0, ...marks });
      }
      current = id;
    }
    out.runs.push({ widget: w, ms: times });
  }
  if (config.widget_shot) {
    // The first widget showing the third grid product and its recommendations (a tall
    // viewport: an element screenshot is clipped by the notebook's scrolling panel).
    await page.setViewportSize({ width: 1200, height: 1900 });
    const root = page.locator(".rnb-root").first();
    const third = root.locator(".rnb-grid button.rnb-product").nth(2);
    const id = Number(await third.getAttribute("data-id"));
    await third.click();
    await page.evaluate(whenPainted, [0, id, k, TIMEOUT]);
    await root.evaluate((el) => el.scrollIntoView({ block: "start" }));
    await page.mouse.move(0, 0);
    await root.screenshot({ path: config.widget_shot });
  }
  if (config.screenshot) await page.screenshot({ path: config.screenshot });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
  timeout: TIMEOUT,
});
const out = { console: [] };
let failed = null;
try {
  const page = await browser.newPage({ viewport: config.viewport ?? { width: 1280, height: 1000 } });
  page.setDefaultTimeout(TIMEOUT);
  page.on("console", (m) => m.type() === "error" && out.console.push(m.text()));
  page.on("pageerror", (e) => out.console.push(`pageerror: ${e}`));
  await { bench, compare, e2e }[config.mode](page, out);
} catch (err) {
  failed = err;
} finally {
  await browser.close();
}
if (failed) {
  out.error = String(failed.message ?? failed);
  console.log(JSON.stringify(out));
  process.exit(1);
}
console.log(JSON.stringify(out));
