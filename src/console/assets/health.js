// Ledger health: head, newest checkpoint, the last verification run from this console, write rate, disk use.
import { api, publicJson, publicText } from "./api.js";
import { h, show, facts, when, errorBox, status } from "./dom.js";

const LAST_VERIFY = "keyledger.lastVerify";

function metric(text, name) {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(" ")[1]) : null;
}

function lastVerification() {
  const saved = JSON.parse(sessionStorage.getItem(LAST_VERIFY) || "null");
  if (!saved) return "not run from this console yet";
  return `${saved.ok ? "OK" : "FAILED"} at ${when(saved.at)}: ${saved.events} events checked${saved.problem ? " — " + saved.problem : ""}`;
}

export async function healthView() {
  show(h("h1", {}, "Ledger health"), h("p", { class: "muted" }, "Loading…"));
  status("loading health");
  try {
    const [health, checkpoint, before] = await Promise.all([publicJson("/healthz"), api("/v1/audit/checkpoint"), publicText("/metrics")]);
    const verifyResult = h("dd", { id: "last-verify" }, lastVerification());
    const verify = h("button", { type: "button", id: "verify", onclick: async () => {
      verify.disabled = true;
      verifyResult.textContent = "verifying every hash, signature and index…";
      try {
        const answer = await api("/v1/audit/verify");
        const report = answer.report || {};
        sessionStorage.setItem(LAST_VERIFY, JSON.stringify({ ok: answer.ok, at: new Date().toISOString(),
          events: report.events_checked, problem: (report.problems || [])[0]?.problem }));
        verifyResult.textContent = lastVerification();
      } catch (error) {
        verifyResult.replaceChildren(errorBox(error));
      } finally {
        verify.disabled = false;
      }
    } }, "Verify the chain now");
    const rate = h("dd", { id: "write-rate" }, "measuring…");
    const bytes = metric(before, "keyledger_store_bytes");
    show(h("h1", {}, "Ledger health"),
      h("section", { class: "panel" }, facts([
        ["Status", h("span", { class: health.status === "ok" ? "ok" : "bad" }, health.status)],
        ["Role", health.replication ? health.replication.role : "leader"],
        ["Head seq", health.durable_seq],
        ["Start-up check", health.startup_check ? health.startup_check.state : ""],
        ["Newest checkpoint", `${checkpoint.size} events, root ${checkpoint.root.slice(0, 16)}…`],
        ["Checkpoint origin", checkpoint.origin],
        ["Disk use", bytes === null ? "unknown" : `${(bytes / 1e6).toFixed(1)} MB`],
      ]), h("dl", { class: "facts" }, h("dt", {}, "Write rate"), rate, h("dt", {}, "Last verification"), verifyResult)),
      h("p", {}, verify));
    const first = metric(before, "keyledger_events_appended_total") || 0;
    setTimeout(async () => {
      try {
        const after = metric(await publicText("/metrics"), "keyledger_events_appended_total") || 0;
        rate.textContent = `${((after - first) / 3).toFixed(1)} events/s (last 3 s)`;
      } catch (error) {
        rate.textContent = `unknown (${error.message})`;
      }
    }, 3000);
  } catch (error) {
    show(h("h1", {}, "Ledger health"), errorBox(error));
    throw error;
  } finally {
    status("");
  }
}
