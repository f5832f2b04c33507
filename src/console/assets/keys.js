// The keys: filtered by environment, owner and status, with last use, age, rotation, expiry and open anomalies.
import { api, pages } from "./api.js";
import { h, show, table, badge, when, daysSince, errorBox, status } from "./dom.js";

export async function keysView(params) {
  const filters = h("form", { class: "filters panel", onsubmit: (e) => {
    e.preventDefault();
    const data = new FormData(e.target);
    const query = new URLSearchParams([...data.entries()].filter(([, v]) => v));
    location.hash = `#/keys?${query}`;
  } },
  h("label", {}, "Environment", h("input", { name: "environment", value: params.get("environment") || "" })),
  h("label", {}, "Owner", h("input", { name: "owner", value: params.get("owner") || "" })),
  h("label", {}, "Status", h("select", { name: "status" },
    ["", "active", "suspended", "revoked", "expired", "retired"].map((s) =>
      h("option", { value: s, selected: s === (params.get("status") || "") }, s || "any")))),
  h("button", { type: "submit" }, "Filter"));
  show(h("h1", {}, "Keys"), filters, h("p", { class: "muted" }, "Loading…"));
  status("loading keys");
  try {
    const query = Object.fromEntries(params.entries());
    const [keys, rotation, expiring, anomalies] = await Promise.all([
      pages("/v1/keys", { ...query, limit: 500 }, "keys", 5000),
      api("/v1/reports/rotation"),
      api("/v1/reports/expiring", { days: 30 }),
      api("/v1/anomalies"),
    ]);
    const findings = new Map(rotation.rows.map((r) => [r.key_id, r.finding]));
    const expiry = new Map(expiring.rows.map((r) => [r.key_id, r.finding]));
    const open = new Map();
    for (const a of anomalies.anomalies) if (a.key_id) open.set(a.key_id, (open.get(a.key_id) || 0) + 1);
    const rows = keys.items.map((k) => [
      h("a", { href: `#/keys/${k.key_id}` }, k.name),
      h("span", { class: "mono" }, k.prefix),
      k.environment,
      k.owner,
      badge(k.status),
      when(k.last_used_at),
      `${daysSince(k.created_at)} d`,
      findings.get(k.key_id) ? h("span", { class: findings.get(k.key_id).includes("overdue") ? "bad" : "warn" }, findings.get(k.key_id)) : "ok",
      expiry.get(k.key_id) || (k.expires_at ? when(k.expires_at) : "never"),
      open.get(k.key_id) ? h("span", { class: "bad" }, String(open.get(k.key_id))) : "0",
    ]);
    show(h("h1", {}, "Keys"), filters,
      h("p", { class: "muted" }, `${rows.length} key${rows.length === 1 ? "" : "s"}${keys.truncated ? " (first 5,000)" : ""}`),
      table(["Name", "Prefix", "Environment", "Owner", "Status", "Last used", "Age", "Rotation", "Expiry", "Anomalies"], rows,
        "No key matches these filters."));
  } catch (error) {
    show(h("h1", {}, "Keys"), filters, errorBox(error));
    throw error;
  } finally {
    status("");
  }
}
