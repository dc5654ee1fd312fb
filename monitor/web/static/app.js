/* The pages' own script: loaded as a file (the Content-Security-Policy allows no inline script).
   - every htmx request carries the session's CSRF token (X-CSRF-Token), as the API asks of a cookie session;
   - an error answer is shown in the page's message area, in the person's language (the server renders it);
   - a live part whose refresh fails says its figures may be old: never a stale "all clear". */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function say(html, kind) {
    var area = document.getElementById("messages");
    if (!area) return;
    var box = document.createElement("div");
    box.className = "message " + (kind || "");
    box.innerHTML = html; // rendered and escaped by the server (or fixed text below)
    area.replaceChildren(box);
  }

  function markStale(element, stale) {
    var live = element && element.closest ? element.closest(".live") : null;
    if (!live) return;
    live.classList.toggle("stale", stale);
    var note = live.querySelector(".stale-note");
    if (note) note.hidden = !stale;
  }

  // queue.js (the offline queue) speaks and signs its requests the same way.
  window.monitorPage = { csrfToken: csrfToken, say: say };

  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token) event.detail.headers["X-CSRF-Token"] = token;
  });

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var type = xhr.getResponseHeader("Content-Type") || "";
    if (type.indexOf("text/html") === 0 && xhr.responseText.length < 4000) {
      say(xhr.responseText, "error");
    } else {
      say('<p class="error">' + (document.documentElement.lang === "en" ? "The server refused: " : "Máy chủ từ chối: ") +
        xhr.status + "</p>", "error");
    }
    markStale(event.detail.elt, true);
  });

  document.addEventListener("htmx:sendError", function (event) {
    say('<p class="error">' + (document.documentElement.lang === "en"
      ? "No connection to the server: the figures shown may be old."
      : "Mất kết nối tới máy chủ: số liệu đang hiển thị có thể đã cũ.") + "</p>", "error");
    markStale(event.detail.elt, true);
  });

  // A live part does not refresh under someone's hands: not while they have rows selected or are typing in it.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var live = event.detail.elt;
    if (!live.classList || !live.classList.contains("live")) return;
    var busy = live.querySelector("input:checked, input[form]:checked") ||
      (document.activeElement && live.contains(document.activeElement) && document.activeElement.matches("input, textarea, select"));
    var selected = document.querySelector('input[form]:checked');
    if (busy || (selected && live.contains(selected))) event.preventDefault();
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    markStale(event.detail.elt, false);
  });

  // A live part refreshes when the phone wakes up or the tab comes back, not only on its timer.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState !== "visible" || !window.htmx) return;
    document.querySelectorAll(".live[hx-get]").forEach(function (element) {
      window.htmx.trigger(element, "refresh");
    });
  });
})();
