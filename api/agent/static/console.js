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
// removed: the next page loaded, whichever it is, removes them. Without this file the switch
// is a plain link that switches (and the words go, as they did).
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
      JSON.stringify({ at: Date.now(), fields: Object.fromEntries(typed) }),
    );
  } catch {
    // Storage refused (full, or turned off): the switch still switches.
  }
});

function restoreTyped() {
  let stored = null;
  try {
    for (const key of Object.keys(sessionStorage)) {
      if (key.startsWith(KEPT)) {
        if (key === KEPT + location.pathname) {
          stored = JSON.parse(sessionStorage.getItem(key) || "null");
        }
        sessionStorage.removeItem(key);
      }
    }
  } catch {
    return;
  }
  if (!stored || !(Date.now() - stored.at < KEPT_FOR_MS)) {
    return;
  }
  for (const [id, value] of Object.entries(stored.fields || {})) {
    const field = document.getElementById(id);
    if (field && field.hasAttribute("data-keep")) {
      field.value = value;
    }
  }
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", restoreTyped);
} else {
  restoreTyped();
}
