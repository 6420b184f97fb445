// Rabta console: small progressive enhancements. Every page works without this file.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const button = event.submitter;
  // Ask before actions that touch many records (the question is in the button's data-confirm).
  if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
    return;
  }
  // One click, one submission: a second click while the page loads would post twice.
  if (form.dataset.submitted === "1") {
    event.preventDefault();
    return;
  }
  if (form.method.toLowerCase() === "post") {
    form.dataset.submitted = "1";
    if (button) {
      button.setAttribute("aria-busy", "true");
    }
  }
});

// A page restored from the back/forward cache must accept submissions again.
window.addEventListener("pageshow", () => {
  for (const form of document.querySelectorAll("form[data-submitted]")) {
    delete form.dataset.submitted;
  }
});

// The language switch keeps what was typed. The page in the other language is a new page, so
// the words in its forms' fields (those marked data-keep) are held in this tab's
// sessionStorage for the moment it takes to load, put back in the same fields there, and
// removed. Only the page they were typed on, showing those fields, to the same member of staff
// (data-agent), takes them: a sign-in page (the session had ended) or an error page shown
// first leaves them for it, and another member of staff signing in at this tab removes them.
// Without this file the switch is a plain link that switches (and the words go, as they did).
const KEPT = "rabta:kept:";
const KEPT_FOR_MS = 60 * 1000;

function typedIn(form) {
  const fields = [...form.querySelectorAll("[data-keep][id]")];
  const written = fields.some((field) => field.tagName !== "SELECT" && field.value.trim());
  return written ? fields.map((field) => [field.id, field.value]) : [];
}

document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest("a.lang-switch");
  if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) {
    return;
  }
  const typed = [...document.forms].flatMap(typedIn);
  if (typed.length === 0) {
    return;
  }
  const next = new URL(link.href).searchParams.get("next") || location.pathname;
  try {
    sessionStorage.setItem(
      KEPT + new URL(next, location.href).pathname,
      JSON.stringify({
        at: Date.now(),
        agent: document.body.dataset.agent || "",
        fields: Object.fromEntries(typed),
      }),
    );
  } catch {
    // Storage refused (full, or turned off): the switch still switches.
  }
});

function keptFields(stored) {
  return Object.entries((stored && stored.fields) || {}).filter(([id]) => {
    const field = document.getElementById(id);
    return field && field.hasAttribute("data-keep");
  });
}

function restoreTyped() {
  const agent = document.body.dataset.agent || "";
  try {
    for (const key of Object.keys(sessionStorage)) {
      if (!key.startsWith(KEPT)) {
        continue;
      }
      const stored = JSON.parse(sessionStorage.getItem(key) || "null");
      if (!stored || !(Date.now() - stored.at < KEPT_FOR_MS)) {
        sessionStorage.removeItem(key);
        continue;
      }
      if (!agent) {
        continue; // the sign-in page: kept for the page it leads back to
      }
      if (stored.agent !== agent) {
        sessionStorage.removeItem(key); // not this member of staff's words
        continue;
      }
      const fields = key === KEPT + location.pathname ? keptFields(stored) : [];
      if (fields.length === 0) {
        continue; // another page, or this one without its forms (an error page)
      }
      for (const [id, value] of fields) {
        document.getElementById(id).value = value;
      }
      sessionStorage.removeItem(key);
    }
  } catch {
    // Storage turned off, or a value that does not read: nothing to put back.
  }
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", restoreTyped);
} else {
  restoreTyped();
}
