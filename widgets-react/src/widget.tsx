/** Entry point of the bundle that recsys_nb.RecommenderWidget loads (static/widget.js). */
import { createRender } from "@anywidget/react";
import { App } from "./App";
import "./widget.css";

const render = createRender(App);

export default { render };
