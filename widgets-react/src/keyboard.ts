/** Keyboard navigation of lists laid out as grids (roving tabindex). */
import type * as React from "react";

/** Columns of a CSS grid as laid out (1 when unknown, e.g. without layout). */
export function gridColumns(el: HTMLElement | null): number {
  if (!el) return 1;
  const buttons = Array.from(el.querySelectorAll<HTMLElement>("button"));
  if (buttons.length < 2) return 1;
  const top = buttons[0].getBoundingClientRect().top;
  const sameRow = buttons.filter((b) => b.getBoundingClientRect().top === top).length;
  return sameRow === buttons.length && top === 0 && buttons[1].getBoundingClientRect().left === 0 ? 1 : sameRow;
}

/** Arrow keys, Home and End move focus between the buttons of `el`, laid out in `columns`. */
export function moveFocus(e: React.KeyboardEvent, el: HTMLElement | null, columns: number) {
  if (!el) return;
  const buttons = Array.from(el.querySelectorAll<HTMLButtonElement>("button"));
  const current = buttons.indexOf(document.activeElement as HTMLButtonElement);
  if (current < 0) return;
  const step: Record<string, number> = {
    ArrowRight: 1,
    ArrowLeft: -1,
    ArrowDown: columns,
    ArrowUp: -columns,
  };
  let next: number;
  if (e.key in step) next = current + step[e.key];
  else if (e.key === "Home") next = 0;
  else if (e.key === "End") next = buttons.length - 1;
  else return;
  e.preventDefault();
  next = Math.max(0, Math.min(buttons.length - 1, next));
  buttons[current].tabIndex = -1;
  buttons[next].tabIndex = 0;
  buttons[next].focus();
}
