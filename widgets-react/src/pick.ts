/**
 * Pick a product on the primary button's press rather than on its release, and keep the
 * notebook out of it: the request leaves at once, and the press's default actions (the
 * compatibility mousedown, on which JupyterLab activates and focuses the cell: 30-50 ms of
 * layout on the main thread, which held up the answer) do not run. The click that ends
 * such a press does nothing more; a click without one (the keyboard's Enter or Space)
 * picks as usual.
 */
import type * as React from "react";

let pressed: number | null = null;

export function pickProps(id: number, onPick: (id: number) => void) {
  return {
    onPointerDown: (e: React.PointerEvent) => {
      if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      pressed = id;
      onPick(id);
    },
    onClick: () => {
      const already = pressed === id;
      pressed = null;
      if (!already) onPick(id);
    },
  };
}
