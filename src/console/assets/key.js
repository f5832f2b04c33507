// One key: its configuration, lifecycle timeline, hourly use (SVG), addresses and user agents, rotation overlap
// stragglers, and anomalies whose evidence links to the incident window.
import { api, pages } from "./api.js";
import { h, show, table, facts, badge, when, errorBox, status } from "./dom.js";
import { bucketUses, usesChart, hourLabel } from "./charts.js";

const HOUR = 3600000;

function incidentLink(query, text) {
  return h("a", { href: `#/incident?${new URLSearchParams(query)}` }, text);
}

export async function keyView(id) {
  show(h("h1", {}, "Key"), h("p", { class: "muted" }, "Loading…"));
  status("loading the key");
  try {
    const [key, history, anomalies, ips, agents, overlap] = await Promise.all([
      api(`/v1/keys/${encodeURIComponent(id)}`),
      pages(`/v1/keys/${encodeURIComponent(id)}/events`, { limit: 1000 }, "events", 5000),
      api("/v1/anomalies", { key_id: id }),
      api("/v1/usage", { key_id: id, group_by: "ip", top: 20 }),
      api("/v1/usage", { key_id: id, group_by: "user_agent", top: 10 }),
      api("/v1/reports/overlap"),
    ]);
    const lifecycle = history.items.filter((e) => e.event.type !== "key.used");
    const stragglers = overlap.rows.filter((r) => r.key_id === key.key_id);
    const usageRows = (report) => report.rows.map((r) => [r.group, r.total, r.allowed, r.total - r.allowed, when(r.last)]);
    show(
      h("h1", {}, key.name, " ", badge(key.status)),
      h("div", { class: "grid" },
        h("section", { class: "panel", "aria-labelledby": "config" }, h("h2", { id: "config" }, "Configuration"),
          facts([
            ["Key id", h("span", { class: "mono" }, key.key_id)], ["Prefix", h("span", { class: "mono" }, key.prefix)],
            ["Owner", key.owner], ["Environment", key.environment], ["Scopes", (key.scopes || []).join(", ")],
            ["IP allowlist", (key.ip_allowlist || []).join(", ") || "any"], ["Rate limit", key.rate_limit_per_minute ? `${key.rate_limit_per_minute}/min` : "none"],
            ["Created", when(key.created_at)], ["Last rotated", when(key.last_rotated_at)], ["Expires", when(key.expires_at)],
            ["Suspended until", key.suspended_until && when(key.suspended_until)], ["Revoked", key.revoked_at && when(key.revoked_at)],
            ["Reason", key.status_reason], ["Last used", `${when(key.last_used_at)} ${key.last_used_ip ? "from " + key.last_used_ip : ""}`],
          ])),
        h("section", { class: "panel", "aria-labelledby": "anomalies" }, h("h2", { id: "anomalies" }, `Anomalies (${anomalies.anomalies.length})`),
          table(["Rule", "Severity", "Observed", "Window", "Evidence"], anomalies.anomalies.map((a) => [
            a.rule, h("span", { class: a.severity === "high" ? "bad" : "warn" }, a.severity), `${a.observed} / ${a.threshold}`,
            incidentLink({ key_id: key.key_id, from: a.window_start, to: a.window_end }, `${when(a.window_start)} → ${when(a.window_end)}`),
            h("span", {}, a.evidence.slice(0, 6).map((seq) => [incidentLink({ key_id: key.key_id, from: a.window_start, to: a.window_end, highlight: seq }, `#${seq}`), " "])),
          ]), "No anomaly was found for this key."))),
      h("section", { class: "panel", "aria-labelledby": "use" }, h("h2", { id: "use" }, "Use per hour"),
        history.items.some((e) => e.event.type === "key.used")
          ? usesChart(`Uses of ${key.name} per hour, valid and denied`, bucketUses(history.items, HOUR, 48), hourLabel)
          : h("p", { class: "empty" }, "This key has not been used."),
        history.truncated ? h("p", { class: "muted" }, "Drawn from the key's first 5,000 events.") : null),
      h("section", { class: "panel", "aria-labelledby": "timeline" }, h("h2", { id: "timeline" }, "Lifecycle"),
        table(["Seq", "Time", "Event", "Actor", "Details"], lifecycle.map((e) => [
          e.seq, when(e.event.time), e.event.type, e.event.actor.name || e.event.actor.key_id || e.event.actor.kind,
          h("span", { class: "wrap" }, e.event.data.reason || e.event.data.rule || ""),
        ]), "No lifecycle events.")),
      h("div", { class: "grid" },
        h("section", { class: "panel", "aria-labelledby": "ips" }, h("h2", { id: "ips" }, "Addresses"),
          table(["IP", "Uses", "Valid", "Denied", "Last"], usageRows(ips), "No use recorded.")),
        h("section", { class: "panel", "aria-labelledby": "agents" }, h("h2", { id: "agents" }, "User agents"),
          table(["User agent", "Uses", "Valid", "Denied", "Last"], usageRows(agents), "No use recorded."))),
      h("section", { class: "panel", "aria-labelledby": "overlap" }, h("h2", { id: "overlap" }, "Rotation overlap stragglers"),
        table(["Finding", "Addresses still using the old key"], stragglers.map((r) => [r.finding,
          Object.entries(r.overlap_ips || {}).map(([ip, n]) => `${ip} (${n})`).join(", ")]),
        key.rotated_to ? "Nobody used the old key during the overlap." : "This key is not in a rotation overlap.")),
    );
  } catch (error) {
    show(h("h1", {}, "Key"), errorBox(error));
    throw error;
  } finally {
    status("");
  }
}
