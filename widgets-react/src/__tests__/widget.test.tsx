import { act, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import widget from "../widget";
import { LIMITS } from "../contract";
import { FakeModel, catalogue, fakePython, wire } from "./fakeModel";

let cleanups: Array<() => void> = [];

async function mount(model: FakeModel) {
  const el = document.createElement("div");
  document.body.appendChild(el);
  await act(async () => {
    const cleanup = (widget.render as any)({ el, model, experimental: {} });
    cleanups.push(() => {
      cleanup?.();
      el.remove();
    });
  });
  return el;
}

afterEach(() => {
  act(() => cleanups.forEach((c) => c()));
  cleanups = [];
});

const grid = () => screen.getByRole("list", { name: "Products" });
const recs = () => screen.getByRole("region", { name: "Recommendations" });

async function gridLoaded() {
  await waitFor(() => expect(within(grid()).getAllByRole("button").length).toBeGreaterThan(0));
}

describe("grid", () => {
  it("asks for the first page and renders it with thumbnails and alt text", async () => {
    const model = new FakeModel(fakePython(60));
    await mount(model);
    await gridLoaded();
    const [req] = model.sentOf("page");
    expect(req).toMatchObject({ kind: "page", search: "", filters: {}, offset: 0, limit: 24 });
    expect(typeof req.uuid).toBe("string");
    const buttons = within(grid()).getAllByRole("button");
    expect(buttons).toHaveLength(24);
    const img = within(buttons[2]).getByRole("img") as HTMLImageElement;
    expect(img.alt).toBe("Product 2");
    expect(img.src).toMatch(/^data:image\/jpeg;base64,/);
    expect(screen.getByRole("status").textContent).toContain("60 products");
  });

  it("pages and searches", async () => {
    const model = new FakeModel(fakePython(60));
    await mount(model);
    await gridLoaded();
    fireEvent.click(screen.getByRole("button", { name: "Next ›" }));
    await waitFor(() => expect(within(grid()).getAllByRole("img")[0].getAttribute("alt")).toBe("Product 24"));
    expect(model.sentOf("page").at(-1)).toMatchObject({ offset: 24, limit: 24 });

    fireEvent.change(screen.getByLabelText("Search products by name"), { target: { value: "product 5" } });
    await waitFor(() => expect(model.get("search")).toBe("product 5"));
    await waitFor(() => expect(within(grid()).getAllByRole("button")).toHaveLength(1 + 10));
    expect(model.sentOf("page").at(-1)).toMatchObject({ search: "product 5", offset: 0 });
  });

  it("offers the facets as filters and writes the filters trait", async () => {
    const model = new FakeModel(fakePython(10), { facets: { gender: ["Men", "Women"] } });
    await mount(model);
    await gridLoaded();
    fireEvent.change(screen.getByLabelText("Filter by gender"), { target: { value: "Women" } });
    expect(model.get("filters")).toEqual({ gender: ["Women"] });
    expect(model.saved).toBeGreaterThan(0);
    await waitFor(() => expect(model.sentOf("page").at(-1).filters).toEqual({ gender: ["Women"] }));
  });
});

describe("click handling", () => {
  it("a click sends a recommend request and shows the query and k recommendations", async () => {
    const model = new FakeModel(fakePython(60));
    await mount(model);
    await gridLoaded();
    fireEvent.click(within(grid()).getAllByRole("button")[2]);
    expect(model.sentOf("recommend")).toEqual([expect.objectContaining({ kind: "recommend", item_id: 102 })]);
    await waitFor(() => expect(within(recs()).getAllByRole("button")).toHaveLength(10));
    const cards = within(recs()).getAllByRole("button");
    expect(cards.map((c) => c.getAttribute("data-id"))).toEqual(
      Array.from({ length: 10 }, (_, i) => String(103 + i)),
    );
    expect(within(cards[0]).getByRole("img").getAttribute("alt")).toBe("Product 3");
    expect(cards[0].textContent).toContain("#1 · 1.000");
    expect(cards[0].textContent).toContain("Shirts");
    const query = recs().querySelector(".rnb-query-card")!;
    expect(query.getAttribute("data-id")).toBe("102");
    expect(query.textContent).toContain("Product 2");
    expect(model.sentOf("items")).toEqual([]); // the reply carried every thumbnail
  });

  it("acts on the press: one request, the mousedown kept from the notebook, the click that follows ignored", async () => {
    const model = new FakeModel(fakePython(60));
    await mount(model);
    await gridLoaded();
    const button = within(grid()).getAllByRole("button")[4];
    const notebook: string[] = [];
    document.body.addEventListener("mousedown", () => notebook.push("mousedown"));
    const press = fireEvent.pointerDown(button, { button: 0 });
    expect(press).toBe(false); // default prevented: no compatibility mousedown, no focus change
    expect(model.sentOf("recommend")).toEqual([expect.objectContaining({ item_id: 104 })]);
    fireEvent.click(button);
    expect(model.sentOf("recommend")).toHaveLength(1);
    fireEvent.pointerDown(button, { button: 2 }); // another button: nothing
    fireEvent.click(button); // a click without a press (Enter, Space) picks
    expect(model.sentOf("recommend")).toHaveLength(2);
  });

  it("shows the reply's answer before the traits follow", async () => {
    const model = new FakeModel(fakePython(60));
    const fake = fakePython(60);
    const held: Array<() => void> = [];
    model.reply = (m, c, b) => {
      if (c.kind !== "recommend") return fake(m, c, b);
      const set = m.set.bind(m); // hold back the trait updates: the reply alone must do
      m.set = ((k: any, v: any) => held.push(() => set(k, v))) as typeof m.set;
      fake(m, c, b);
      m.set = set;
    };
    await mount(model);
    await gridLoaded();
    fireEvent.click(within(grid()).getAllByRole("button")[2]);
    await waitFor(() => expect(within(recs()).getAllByRole("button")).toHaveLength(10));
    expect(recs().querySelector(".rnb-query-card")!.getAttribute("data-id")).toBe("102");
    expect(model.get("selected")).toBe(null);
    act(() => held.forEach((f) => f()));
    expect(model.get("selected")).toBe(102);
    expect(within(recs()).getAllByRole("button").map((c) => c.getAttribute("data-id"))[0]).toBe("103");
  });

  it("keeps what Python sends ahead and shows it without loading it again", async () => {
    const model = new FakeModel(fakePython(60), { k: 3 });
    await mount(model);
    await gridLoaded();
    const ahead = wire(catalogue(60).slice(40, 45));
    act(() => model.emitCustom({ kind: "prefetch", items: ahead.items }, ahead.buffers));
    act(() => model.set("selected", 140));
    act(() => model.set("recommendations", [{ id: 141, score: 0.9, rank: 1 }]));
    await waitFor(() => expect(within(recs()).getAllByRole("img").map((i) => i.getAttribute("alt"))).toContain("Product 41"));
    expect(model.sentOf("items")).toEqual([]); // 140 and 141 came ahead: nothing to ask
  });

  it("keeps k slots before any query, so results do not move the layout", async () => {
    const model = new FakeModel(fakePython(10), { k: 6 });
    await mount(model);
    expect(recs().querySelectorAll(".rnb-rec-grid > li")).toHaveLength(6);
  });

  it("shows the error Python replies with", async () => {
    const model = new FakeModel(fakePython(10));
    await mount(model);
    await gridLoaded();
    // a product id Python does not know, as if the catalogue changed under the view
    const button = within(grid()).getAllByRole("button")[0];
    button.setAttribute("data-id", "999");
    const fake = fakePython(10);
    model.reply = (m, c, b) => fake(m, c.kind === "recommend" ? { ...c, item_id: 999 } : c, b);
    fireEvent.click(button);
    await waitFor(() => expect(screen.getByRole("status").textContent).toContain("unknown product id 999"));
  });

  it("shows what Python selects: unknown ids are fetched with an items request", async () => {
    const model = new FakeModel(fakePython(60), { k: 3 });
    await mount(model);
    await gridLoaded();
    act(() => {
      model.set("selected", 150);
      model.set("recommendations", [
        { id: 151, score: 0.9, rank: 1 },
        { id: 152, score: 0.8, rank: 2 },
        { id: 105, score: 0.7, rank: 3 },
      ]);
    });
    await waitFor(() => expect(within(recs()).getAllByRole("img").map((i) => i.getAttribute("alt"))).toEqual([
      "Product 50", "Product 51", "Product 52", "Product 5",
    ]));
    const asked = model.sentOf("items").flatMap((m) => m.ids);
    expect(asked).toEqual(expect.arrayContaining([150, 151, 152]));
    expect(asked).not.toContain(105); // already on the first page
  });

  it("arrow keys move the focus through the grid; the focused product is a button", async () => {
    const model = new FakeModel(fakePython(10));
    await mount(model);
    await gridLoaded();
    const buttons = within(grid()).getAllByRole("button");
    expect(buttons[0].tabIndex).toBe(0);
    expect(buttons[1].tabIndex).toBe(-1);
    buttons[0].focus();
    fireEvent.keyDown(buttons[0], { key: "ArrowRight" });
    expect(document.activeElement).toBe(buttons[1]);
    expect(buttons[1].tabIndex).toBe(0);
    fireEvent.keyDown(buttons[1], { key: "End" });
    expect(document.activeElement).toBe(buttons[9]);
    fireEvent.keyDown(buttons[9], { key: "ArrowLeft" });
    expect(document.activeElement).toBe(buttons[8]);
  });
});

describe("trail", () => {
  it("records queries and goes back", async () => {
    const model = new FakeModel(fakePython(60));
    await mount(model);
    await gridLoaded();
    const trail = () => screen.getByRole("navigation", { name: "Previous queries" });
    fireEvent.click(within(grid()).getAllByRole("button")[2]);
    await waitFor(() => expect(model.get("selected")).toBe(102));
    await waitFor(() => expect(within(recs()).getAllByRole("button")).toHaveLength(10));
    fireEvent.click(within(recs()).getAllByRole("button")[4]); // moves on to 107
    await waitFor(() => expect(model.get("selected")).toBe(107));
    fireEvent.click(within(recs()).getAllByRole("button")[0]); // and on to 108
    await waitFor(() => expect(model.get("selected")).toBe(108));
    const entries = () => Array.from(trail().querySelectorAll("[data-trail]")).map((b) => b.textContent);
    expect(entries()).toEqual(["Product 2", "Product 7", "Product 8"]);
    expect(trail().querySelector("[aria-current]")!.textContent).toBe("Product 8");

    fireEvent.click(within(trail()).getByRole("button", { name: "← Back" }));
    await waitFor(() => expect(model.get("selected")).toBe(107));
    expect(model.sentOf("recommend").at(-1)).toMatchObject({ item_id: 107 });
    expect(entries()).toEqual(["Product 2", "Product 7"]);

    fireEvent.click(within(trail()).getByRole("button", { name: "Product 2" }));
    await waitFor(() => expect(model.get("selected")).toBe(102));
    expect(entries()).toEqual(["Product 2"]);
  });

  it("follows a selection made from Python", async () => {
    const model = new FakeModel(fakePython(60));
    await mount(model);
    await gridLoaded();
    act(() => model.set("selected", 120));
    await waitFor(() =>
      expect(screen.getByRole("navigation", { name: "Previous queries" }).querySelector("[data-trail='120']")).not.toBeNull(),
    );
  });

  it("an image file becomes a query with its bytes as the one binary buffer", async () => {
    const model = new FakeModel(fakePython(30));
    const el = await mount(model);
    await gridLoaded();
    const file = new File([new Uint8Array([0xff, 0xd8, 0xff, 1, 2, 3])], "shoe.jpg", { type: "image/jpeg" });
    const input = el.querySelector("input[type=file]") as HTMLInputElement;
    Object.defineProperty(input, "files", { value: [file] });
    fireEvent.change(input);
    await waitFor(() => expect(model.sentOf("recommend")).toHaveLength(1));
    const sent = model.sent.find((s) => s.content.kind === "recommend")!;
    expect(sent.content).toMatchObject({ image: { name: "shoe.jpg", type: "image/jpeg" } });
    expect(sent.content).not.toHaveProperty("item_id");
    expect(Array.from(new Uint8Array(sent.buffers[0]))).toEqual([0xff, 0xd8, 0xff, 1, 2, 3]);
    await waitFor(() => expect(recs().querySelector(".rnb-query-card")!.textContent).toContain("shoe.jpg"));
    await waitFor(() => expect(within(recs()).getAllByRole("button")).toHaveLength(10));
    expect(screen.getByRole("navigation", { name: "Previous queries" }).textContent).toContain("shoe.jpg");
  });
});

describe("filters and limits", () => {
  it("the same-type toggle writes the same_type trait", async () => {
    const model = new FakeModel(fakePython(10));
    await mount(model);
    await gridLoaded();
    const toggle = screen.getByRole("checkbox", { name: /same type as the query/ }) as HTMLInputElement;
    expect(toggle.checked).toBe(false);
    fireEvent.click(toggle);
    expect(model.get("same_type")).toBe(true);
    expect(model.saved).toBeGreaterThan(0);
    act(() => model.set("same_type", false)); // and follows Python
    expect(toggle.checked).toBe(false);
  });

  it("refuses an image file over the size limit without sending it", async () => {
    const model = new FakeModel(fakePython(10));
    const el = await mount(model);
    await gridLoaded();
    const file = new File([new Uint8Array([0xff, 0xd8, 0xff])], "huge.jpg", { type: "image/jpeg" });
    Object.defineProperty(file, "size", { value: LIMITS.max_upload_bytes + 1 });
    const input = el.querySelector("input[type=file]") as HTMLInputElement;
    Object.defineProperty(input, "files", { value: [file] });
    fireEvent.change(input);
    await waitFor(() => expect(screen.getByRole("status").textContent).toContain("huge.jpg: image file too large"));
    expect(screen.getByRole("status").textContent).toContain("(at most 20 MB)");
    expect(model.sentOf("recommend")).toEqual([]);
  });
});

describe("comparison and the map link", () => {
  it("shows a row per embedding, marked where they share the query's type or colour; a click in any row queries it", async () => {
    const model = new FakeModel(fakePython(60, { compare: true }));
    await mount(model);
    await gridLoaded();
    fireEvent.click(within(grid()).getAllByRole("button")[20]); // id 120, a Watch
    const panel = () => screen.getByRole("region", { name: "Recommendations compared" });
    await waitFor(() => expect(panel().querySelectorAll("[data-row]")).toHaveLength(2));
    const [mine, hog] = [...panel().querySelectorAll<HTMLElement>("[data-row]")];
    expect(mine.dataset.row).toBe("products");
    expect(hog.dataset.row).toBe("hog");
    // hog: ids 110..119, half of them Watches like the query, all Blue.
    const hogCards = [...hog.querySelectorAll<HTMLElement>(".rnb-rec")];
    expect(hogCards.map((c) => Number(c.dataset.id))).toEqual(Array.from({ length: 10 }, (_, i) => 110 + i));
    expect(hog.querySelectorAll('[data-same="articleType"]')).toHaveLength(5);
    expect(hog.querySelectorAll('[data-same="baseColour"]')).toHaveLength(10);
    expect(hog.querySelector('[data-share="articleType"]')!.textContent).toBe("same type 5/10");
    expect(hog.querySelector('[data-share="baseColour"]')!.textContent).toBe("same colour 10/10");
    // Every row's pictures came with the reply: nothing asked for again.
    await waitFor(() => expect(hogCards.every((c) => c.querySelector("img"))).toBe(true));
    expect(model.sentOf("items")).toHaveLength(0);

    fireEvent.click(hogCards[3]);
    await waitFor(() => expect(model.sentOf("recommend").at(-1)).toMatchObject({ item_id: 113 }));
  });

  it("a new subset (a selection on a linked map) asks for the grid again from its first page", async () => {
    const model = new FakeModel(fakePython(60));
    await mount(model);
    await gridLoaded();
    fireEvent.click(screen.getByRole("button", { name: "Next ›" }));
    await waitFor(() => expect(model.sentOf("page").at(-1)).toMatchObject({ offset: 24 }));
    act(() => model.set("subset", [103, 140, 141]));
    await waitFor(() => expect(within(grid()).getAllByRole("button")).toHaveLength(3));
    expect(model.sentOf("page").at(-1)).toMatchObject({ offset: 0 });
    expect(screen.getByRole("status").textContent).toContain("3 products in the map's selection");
    expect(within(grid()).getAllByRole("img").map((i) => i.getAttribute("alt"))).toEqual(["Product 3", "Product 40", "Product 41"]);
  });
});
