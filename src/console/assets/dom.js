// Building the page from data without innerHTML: every value is set as text, so nothing from the log is markup.
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
}

export function show(...children) {
  const main = document.getElementById("main");
  main.replaceChildren();
  append(main, children);
}

export function status(text) {
  document.getElementById("status").textContent = text || "";
}

export function table(headers, rows, empty) {
  if (rows.length === 0) return h("p", { class: "empty" }, empty);
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell)))))));
}

export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));
}

export function badge(statusName) {
  return h("span", { class: `badge s-${statusName}` }, statusName);
}

export function when(time) {
  return time ? time.replace("T", " ").replace(/\.\d+Z$/, "Z") : "—";
}

export function daysSince(time) {
  return time ? Math.floor((Date.now() - Date.parse(time)) / 86400000) : null;
}

export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, `${error.code ? error.code + ": " : ""}${error.message}`);
}
