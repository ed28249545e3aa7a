// Drive Debian's Chromium (playwright-core, no downloaded browsers) through the widget
// harness served by tests/ui/test_browser.py; print what it saw as one JSON line.
// Usage: node drive.mjs URL IMAGE_FILE SCREENSHOT BIG_FILE   (WIDGET_DIR: where node_modules is)
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.WIDGET_DIR, "package.json"));
const { chromium } = require("playwright-core");
const [url, imageFile, screenshot, bigFile] = process.argv.slice(2);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});
const out = { console: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 1100 } });
  page.on("console", (m) => m.type() === "error" && out.console.push(m.text()));
  page.on("pageerror", (e) => out.console.push(String(e)));
  await page.goto(url);
  await page.waitForFunction(() => window.__ready === true);
  const products = page.locator(".rnb-grid button.rnb-product");
  await products.nth(2).waitFor();
  await page.waitForFunction(() => [...document.querySelectorAll(".rnb-grid img")].every((i) => i.complete && i.naturalWidth > 0));
  out.grid = await products.evaluateAll((bs) => bs.map((b) => ({ id: Number(b.dataset.id), alt: b.querySelector("img")?.alt })));
  const python = async () => (await fetch(new URL("/python", url))).json();
  out.before = await python();

  // Wait until the query card shows `query` and k recommendation images have painted.
  const painted = (query, k) =>
    paintedOrFail(query, k).catch(async (err) => {
      throw new Error(`${err.message}\nwaiting for query ${query}, page shows ${JSON.stringify(await shown())}`);
    });
  const paintedOrFail = (query, k) =>
    page.waitForFunction(
      ([query, k]) => {
        const card = document.querySelector(".rnb-query-card");
        const imgs = [...document.querySelectorAll(".rnb-rec img")];
        return card?.dataset.id === String(query) && imgs.length === k && imgs.every((i) => i.complete && i.naturalWidth > 0);
      },
      [query, k],
      { timeout: 20000 },
    );
  const shown = () =>
    page.evaluate(() => ({
      query: document.querySelector(".rnb-query-card")?.dataset.id,
      recs: [...document.querySelectorAll(".rnb-rec")].map((b) => ({
        id: Number(b.dataset.id),
        alt: b.querySelector("img")?.alt,
        text: b.textContent,
      })),
      trail: [...document.querySelectorAll("[data-trail]")].map((b) => b.textContent),
      status: document.querySelector(".rnb-status")?.textContent,
    }));

  // 1. Click the third product.
  const third = out.grid[2].id;
  const t0 = Date.now();
  await products.nth(2).click();
  await painted(third, 10);
  out.click_ms = Date.now() - t0;
  out.click = await shown();
  out.sent_after_click = await page.evaluate(() => window.__sent.filter((m) => m.kind !== "page"));
  out.after_click = await python();
  await page.screenshot({ path: screenshot, fullPage: true });

  // 2. Click the first recommendation: it becomes the query.
  const firstRec = out.click.recs[0].id;
  await page.locator(".rnb-rec").first().click();
  await painted(firstRec, 10);
  out.moved_on = await shown();

  // 3. Keyboard: focus the first product, arrow right, Enter.
  await products.first().focus();
  await page.keyboard.press("ArrowRight");
  out.focused = await page.evaluate(() => Number(document.activeElement?.dataset.id));
  await page.keyboard.press("Enter");
  await painted(out.grid[1].id, 10);
  out.keyboard = await shown();

  // 4. Back along the trail to the third product.
  await page.locator(`.rnb-trail [data-trail="${third}"]`).click();
  await painted(third, 10);
  out.back = await shown();

  // 5. Choose an image file: a product that is not (as far as the widget knows) in the catalogue.
  await page.locator("input[type=file]").setInputFiles(imageFile);
  await painted("image", 10);
  out.image = await shown();
  out.sent_image = await page.evaluate(() => window.__sent.filter((m) => m.kind === "recommend").at(-1));
  out.after_image = await python();

  // 6. Python sets `selected`: the view follows.
  await fetch(new URL(`/python/select?id=${out.grid[5].id}`, url), { method: "POST" });
  await painted(out.grid[5].id, 10);
  out.from_python = await shown();

  // 7. The same-type toggle: Python recomputes, the view shows Python's new list.
  await page.getByRole("checkbox", { name: /same type as the query/ }).check();
  let after;
  for (let i = 0; i < 100 && !(after = await python()).same_type; i++) await page.waitForTimeout(100);
  const ids = after.recommendations.map((r) => r.id);
  await page.waitForFunction(
    (ids) => {
      const recs = [...document.querySelectorAll(".rnb-rec")];
      return recs.map((b) => Number(b.dataset.id)).join() === ids.join() && recs.every((b) => b.querySelector("img")?.complete);
    },
    ids,
    { timeout: 20000 },
  );
  out.same_type = { python: after, shown: await shown() };

  // 8. An image file over the size limit is refused in the page: nothing is sent.
  const sentBefore = await page.evaluate(() => window.__sent.length);
  await page.locator("input[type=file]").setInputFiles(bigFile);
  await page.waitForFunction(() => document.querySelector(".rnb-status .rnb-error")?.textContent.includes("too large"));
  out.too_large = {
    status: (await shown()).status,
    sent: (await page.evaluate(() => window.__sent.length)) - sentBefore,
  };
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
