// The console's router and sign-in: a keyledger key with ledger:read, kept only in this tab's session storage.
import { api, session } from "./api.js";
import { h, show, errorBox } from "./dom.js";
import { keysView } from "./keys.js";
import { keyView } from "./key.js";
import { incidentView } from "./incident.js";
import { healthView } from "./health.js";

function signInView(message) {
  const field = h("input", { id: "key", name: "key", type: "password", autocomplete: "off", required: true, placeholder: "kl_…" });
  show(h("form", { class: "panel signin", id: "sign-in", onsubmit: async (e) => {
    e.preventDefault();
    session.signIn(field.value.trim());
    try {
      await api("/v1/keys", { limit: 1 });
      location.hash = "#/keys";
      route();
    } catch (error) {
      session.signOut();
      signInView(error);
    }
  } },
  h("h1", {}, "Sign in"),
  h("p", {}, "With a keyledger key that has the ledger:read scope (ledger:audit too, for exports and verification). It stays in this tab only; signing out forgets it."),
  message ? errorBox(message) : null,
  h("label", { for: "key" }, "Key"), field, h("p", {}, h("button", { type: "submit" }, "Sign in"))));
  field.focus();
}

async function route() {
  const nav = document.getElementById("nav");
  if (!session.key()) {
    nav.hidden = true;
    signInView();
    return;
  }
  nav.hidden = false;
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  const section = parts[0] || "keys";
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    if (section === "keys" && parts[1]) await keyView(decodeURIComponent(parts[1]));
    else if (section === "incident") await incidentView(params);
    else if (section === "health") await healthView();
    else await keysView(params);
    document.getElementById("main").focus({ preventScroll: true });
  } catch (error) {
    if (error.status === 401) {
      session.signOut();
      nav.hidden = true;
      signInView(error);
    }
  }
}

document.getElementById("sign-out").addEventListener("click", () => {
  session.signOut();
  location.hash = "";
  route();
});
window.addEventListener("hashchange", route);
route();
