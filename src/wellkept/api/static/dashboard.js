// The wellkept dashboard: refreshes itself, and pauses or resumes schedules with the token.
//
// The token is typed by the user and kept in this tab's sessionStorage only (never in the
// page, never in a cookie): it is sent as "Authorization: Bearer" with the POSTs, which a
// page from another site cannot do, so the buttons cannot be clicked on the user's behalf.
"use strict";

(function () {
  const KEY = "wellkept-api-token";
  const body = document.body;
  const refreshSeconds = Math.max(2, parseInt(body.dataset.refresh || "10", 10));
  const days = body.dataset.days || "7";
  const content = document.getElementById("content");
  const message = document.getElementById("message");
  const tokenInput = document.getElementById("token");
  const tokenState = document.getElementById("token-state");
  let busy = false;

  function token() {
    try { return sessionStorage.getItem(KEY) || ""; } catch (e) { return ""; }
  }

  function showTokenState() {
    tokenState.textContent = token() ? "token set for this tab" : "";
  }

  function say(text, isError) {
    message.textContent = text;
    message.className = isError ? "error" : "ok";
  }

  async function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const response = await fetch(`?fragment=true&days=${encodeURIComponent(days)}`,
                                   {headers: {"Accept": "text/html"}, cache: "no-store"});
      if (response.ok) {
        content.innerHTML = await response.text();
        document.getElementById("updated").textContent =
          "updated " + new Date().toLocaleTimeString();
      } else {
        say(`refresh failed: HTTP ${response.status}`, true);
      }
    } catch (e) {
      say("refresh failed: the server does not answer", true);
    } finally {
      busy = false;
    }
  }

  async function pauseResume(button) {
    const schedule = button.dataset.schedule;
    const action = button.dataset.action;
    if (!token()) {
      say(`enter the API token above to ${action} ${schedule}`, true);
      tokenInput.focus();
      return;
    }
    button.disabled = true;
    try {
      const response = await fetch(
        `/maintenance/schedule/${encodeURIComponent(schedule)}/${action}`,
        {method: "POST", headers: {"Authorization": `Bearer ${token()}`}});
      const answer = await response.json().catch(() => ({}));
      if (response.ok) {
        say(`${schedule}: ${action === "pause" ? "paused" : "resumed"}`, false);
      } else {
        say(`${action} ${schedule} failed: ${answer.error || "HTTP " + response.status}`, true);
      }
    } finally {
      await refresh();
    }
  }

  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = tokenInput.value.trim();
    if (value) {
      sessionStorage.setItem(KEY, value);
      tokenInput.value = "";
    }
    showTokenState();
  });
  document.getElementById("token-clear").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    showTokenState();
  });
  // one listener for buttons that a refresh replaces
  content.addEventListener("click", (event) => {
    const button = event.target.closest("button.pause-resume");
    if (button) pauseResume(button);
  });
  document.addEventListener("visibilitychange", refresh);
  showTokenState();
  setInterval(refresh, refreshSeconds * 1000);
})();
