/** The widget's model and its synced traits, typed by the contract. */
import { useModel, useModelState } from "@anywidget/react";
import type { Model, WidgetModel } from "../contract";

/** `[value, set]` of one trait; `set` writes it to Python too. */
export function useTrait<K extends keyof WidgetModel>(key: K) {
  return useModelState<WidgetModel[K]>(key as string);
}

export function useWidgetModel(): Model {
  return useModel<WidgetModel>() as Model;
}
