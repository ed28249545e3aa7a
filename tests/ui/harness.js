// A stand-in for the Jupyter widget manager: an anywidget model whose other end is a
// real recsys_nb.RecommenderWidget in the pytest process (tests/ui/test_browser.py).
// Comm messages travel over HTTP: custom messages and state updates are delivered to
// the widget's _handle_msg exactly as the kernel would, and everything the widget
// sends back (replies with binary thumbnails, trait updates) is applied here in order.
// Base64 is only this test transport's way of carrying binary over fetch(); the widget
// itself hands the comm raw buffers.

const listeners = new Map();
const state = {};
const dirty = new Set();
window.__sent = []; // every custom message the front end sent, for the test to read

function emit(event, ...args) {
  for (const fn of [...(listeners.get(event) ?? [])]) fn(...args);
}

const toB64 = (buf) => {
  const bytes = new Uint8Array(buf);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
};
const fromB64 = (s) => {
  const bin = atob(s);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new DataView(bytes.buffer);
};

function apply(messages) {
  for (const m of messages) {
    if (m.method === "update") {
      for (const [key, value] of Object.entries(m.state)) {
        state[key] = value;
        emit(`change:${key}`, value);
      }
      emit("change");
    } else if (m.method === "custom") {
      emit("msg:custom", m.content, m.buffers.map(fromB64));
    }
  }
}

let queue = Promise.resolve();
function post(path, body) {
  // One comm message at a time, in order, like a kernel channel.
  queue = queue.then(async () => {
    const res = await fetch(path, { method: "POST", body: JSON.stringify(body) });
    apply((await res.json()).messages);
  });
  return queue;
}

const model = {
  get: (key) => state[key],
  set: (key, value) => {
    state[key] = value;
    dirty.add(key);
    emit(`change:${key}`, value);
  },
  save_changes: () => {
    const changed = Object.fromEntries([...dirty].map((k) => [k, state[k]]));
    dirty.clear();
    post("/update", { state: changed });
  },
  on: (event, fn) => {
    if (!listeners.has(event)) listeners.set(event, new Set());
    listeners.get(event).add(fn);
  },
  off: (event, fn) => {
    if (event && fn) listeners.get(event)?.delete(fn);
    else if (event) listeners.delete(event);
  },
  send: (content, _callbacks, buffers = []) => {
    window.__sent.push(content);
    post("/custom", { content, buffers: buffers.map(toB64) });
  },
  widget_manager: {},
};

const initial = await (await fetch("/state")).json();
Object.assign(state, initial);
const { default: widget } = await import("/static/widget.js");
widget.render({ model, el: document.getElementById("widget"), experimental: {} });
// Messages Python sends on its own (a notebook setting w.selected) arrive by polling.
setInterval(() => post("/poll", {}), 200);
window.__ready = true;
