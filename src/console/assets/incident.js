// The incident window: a time range and filters → events with paging, a per-minute chart of the window, and the
// window as a verifiable export with the command that verifies it offline.
import { api, apiBlob, pages } from "./api.js";
import { h, show, table, when, errorBox, status } from "./dom.js";
import { bucketUses, usesChart, minuteLabel } from "./charts.js";

const FIELDS = ["from", "to", "ip", "request_id", "key_id", "type", "outcome"];
const TYPES = ["", "key.created", "key.updated", "key.rotated", "key.revoked", "key.suspended", "key.reactivated",
  "key.expired", "key.used", "policy.set", "anomaly.detected", "ledger.signer_rotated"];
const OUTCOMES = ["", "valid", "not_found", "bad_format", "revoked", "expired", "suspended", "retired",
  "insufficient_scope", "ip_not_allowed", "rate_limited", "project_not_allowed"];

function form(params) {
  const input = (name, label, hint) => h("label", {}, label, h("input", { name, value: params.get(name) || "", placeholder: hint }));
  const select = (name, label, options) => h("label", {}, label, h("select", { name },
    options.map((o) => h("option", { value: o, selected: o === (params.get(name) || "") }, o || "any"))));
  return h("form", { class: "filters panel", id: "incident-form", onsubmit: (e) => {
    e.preventDefault();
    const data = new FormData(e.target);
    location.hash = `#/incident?${new URLSearchParams([...data.entries()].filter(([, v]) => v))}`;
  } },
  input("from", "From", "-1h, 2026-12-02T02:10:00Z"), input("to", "To", "now"), input("ip", "IP", "203.0.113.7"),
  input("request_id", "Request id", ""), input("key_id", "Key id", ""), select("type", "Type", TYPES),
  select("outcome", "Outcome", OUTCOMES), h("button", { type: "submit" }, "Show events"));
}

function row(e, highlight) {
  const d = e.event.data;
  const mark = String(e.seq) === highlight ? h("strong", {}, `▶ ${e.seq}`) : e.seq;
  return [mark, when(e.event.time), e.event.type, d.key_id ? h("a", { href: `#/keys/${d.key_id}` }, d.prefix || d.key_id) : "",
    d.ip || "", d.outcome || "", e.event.request_id || "", e.event.actor.name || e.event.actor.key_id || e.event.actor.kind];
}

async function download(query) {
  status("exporting");
  const blob = await apiBlob("/v1/audit/export", { from: query.from, to: query.to });
  const name = `keyledger-export-${(query.from || "start").replace(/[^0-9A-Za-z-]/g, "")}.jsonl`;
  const link = h("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(link);
  link.click();
  link.remove();
  status("");
  return name;
}

export async function incidentView(params) {
  const query = Object.fromEntries(FIELDS.map((f) => [f, params.get(f) || ""]));
  const highlight = params.get("highlight");
  const header = [h("h1", {}, "Incident window"), form(params)];
  if (!query.from && !query.to) {
    show(header, h("p", { class: "empty" }, "Choose a time range (and filters) to see what happened in it."));
    return;
  }
  const apiQuery = { ...query, outcome: undefined, limit: 50 };
  const exportNote = h("div", { id: "export-note" });
  const exportButton = h("button", { type: "button", class: "secondary", id: "export", onclick: async () => {
    try {
      const name = await download(query);
      exportNote.replaceChildren(h("p", {}, `Downloaded ${name}. Verify it offline with only the ledger's public key:`),
        h("pre", {}, `keyledger audit verify-export ${name} --public-key signing.pub`));
    } catch (error) {
      exportNote.replaceChildren(errorBox(error));
    }
  } }, "Download as a verifiable export");
  status("loading events");
  try {
    const keep = (e) => !query.outcome || e.event.data.outcome === query.outcome;
    const [first, window] = await Promise.all([api("/v1/events", apiQuery), pages("/v1/events", { ...apiQuery, limit: 1000 }, "events", 10000)]);
    const inWindow = window.items.filter(keep);
    const list = h("div", { id: "events" });
    let page = first;
    const render = () => {
      const rows = page.events.filter(keep);
      list.replaceChildren(
        table(["Seq", "Time", "Type", "Key", "IP", "Outcome", "Request", "Actor"], rows.map((e) => row(e, highlight)),
          query.outcome ? "No event with this outcome on this page." : "No event in this window matches."),
        h("div", { class: "pager" }, page.next_cursor
          ? h("button", { type: "button", id: "next-page", onclick: async () => {
            page = await api("/v1/events", { cursor: page.next_cursor });
            render();
          } }, "Next page")
          : h("span", { class: "muted" }, "End of the window.")));
    };
    render();
    show(header,
      h("section", { class: "panel", "aria-labelledby": "per-minute" }, h("h2", { id: "per-minute" }, `Uses per minute (${inWindow.length} events${window.truncated ? ", first 10,000" : ""})`),
        inWindow.some((e) => e.event.type === "key.used")
          ? usesChart("Uses per minute in the window, valid and denied", bucketUses(inWindow, 60000, 180), minuteLabel)
          : h("p", { class: "muted" }, "No key use in this window.")),
      h("section", { class: "panel", "aria-labelledby": "event-list" }, h("h2", { id: "event-list" }, "Events"), list),
      h("section", { class: "panel", "aria-labelledby": "export-h" }, h("h2", { id: "export-h" }, "Export"),
        h("p", {}, "The whole window, every event with its hash and signature, and the proof that it is in the signed checkpoint (needs ledger:audit)."),
        exportButton, exportNote));
  } catch (error) {
    show(header, errorBox(error));
    throw error;
  } finally {
    status("");
  }
}
