/* Actions taken on a weak signal are never lost: the ticket page's forms send their action to the API with an
   Idempotency-Key; when the network fails, the action waits in the browser (IndexedDB) and is sent again when
   the signal returns (the "online" event, every 20 s while something waits, and on the next page opened). The
   key makes a resend safe: the server applies an action once and answers a repeat with the first answer.
   Why not a service worker's Background Sync: it exists in Chromium only, not in Safari or Firefox, and the
   worker would need the session's CSRF token it cannot read; a page of the service is open whenever a
   technician works, so the page itself can resend. */
(function () {
  "use strict";
  var DB = "monitor-outbox", STORE = "actions", RETRY_MS = 20000;
  var en = document.documentElement.lang === "en";

  function open() {
    return new Promise(function (resolve, reject) {
      var request = indexedDB.open(DB, 1);
      request.onupgradeneeded = function () { request.result.createObjectStore(STORE, { keyPath: "key" }); };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }
  function store(mode, work) {
    return open().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode), result = work(tx.objectStore(STORE));
        tx.oncomplete = function () { resolve(result && result.result); };
        tx.onerror = function () { reject(tx.error); };
      });
    });
  }
  function all() { return store("readonly", function (s) { return s.getAll(); }); }
  function put(item) { return store("readwrite", function (s) { return s.put(item); }); }
  function drop(key) { return store("readwrite", function (s) { return s.delete(key); }); }

  function newKey() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }
  // app.js (loaded before this file) reads the session's CSRF token and writes into the message area.
  function csrf() { return window.monitorPage.csrfToken(); }
  function say(text, kind) {
    var box = document.createElement("p");
    box.textContent = text; // never HTML: it may hold what the server echoed of a person's input
    window.monitorPage.say(box.outerHTML, kind);
  }

  function showPending() {
    return all().then(function (items) {
      document.querySelectorAll(".pending-note").forEach(function (note) {
        note.hidden = items.length === 0;
        var count = note.querySelector(".pending-count");
        if (count) count.textContent = items.map(function (i) { return i.label; }).join(", ") || "0";
      });
      var badge = document.getElementById("outbox");
      if (badge) { badge.hidden = items.length === 0; badge.textContent = (en ? "Waiting to send: " : "Chờ gửi: ") + items.length; }
      return items;
    }).catch(function () { return []; });
  }

  /* Send one action; resolves to "done", "refused" (the server said no: dropped, shown) or "waiting". */
  function send(item) {
    var headers = { "Idempotency-Key": item.key, "X-CSRF-Token": csrf(), "Accept": "application/json" };
    var body;
    if (item.file) {
      body = new FormData();
      (item.fields || []).forEach(function (pair) { body.append(pair[0], pair[1]); });
      body.append(item.field || "file", item.file, item.filename || "photo.jpg");
    } else {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(item.json);
    }
    if (item.method === "DELETE") { body = undefined; delete headers["Content-Type"]; }
    return fetch(item.url, { method: item.method || "POST", headers: headers, body: body, credentials: "same-origin" }).then(
      function (response) {
        if (response.ok) {
          return drop(item.key).then(function () {
            if (item.then) {
              return response.json().then(function (answer) {
                window.location.assign(item.then.replace("{code}", encodeURIComponent(answer.code || "")));
                return "moved";
              });
            }
            if (item.summaryText) {
              return response.json().then(function (answer) {
                say(Object.keys(answer).map(function (k) { return k + ": " + answer[k]; }).join(" · "), "");
                return "shown";
              });
            }
            if (!item.summary) return "done";
            return response.json().then(function (answer) {
              var refused = answer.results.filter(function (r) { return r.outcome !== "done"; });
              say((en ? "Done for " : "Đã thực hiện ") + answer.done + "/" + answer.results.length +
                (refused.length ? (en ? "; not done: " : "; không thực hiện được: ") +
                  refused.map(function (r) { return r.code + (r.reason ? " (" + r.reason + ")" : ""); }).join(", ") : ""), refused.length ? "warn" : "");
              return "summary";
            });
          });
        }
        if (response.status === 409 && response.headers.get("Retry-After")) return "waiting"; // the first copy is in flight
        if (response.status >= 500 || response.status === 429 || response.status === 408) return "waiting";
        return response.json().catch(function () { return {}; }).then(function (problem) {
          if (problem.confirmation_required && item.json && !item.json.confirm) {
            if (window.confirm(problem.title || "")) {
              item.json.confirm = true;
              return put(item).then(function () { return send(item); });
            }
          }
          return drop(item.key).then(function () {
            var lines = (problem.errors || []).map(function (e) {
              return (e.line ? (en ? "line " : "dòng ") + e.line + ": " : "") + e.field + ": " + e.reason;
            });
            say([(problem.title || (en ? "Refused" : "Bị từ chối")) + (problem.detail && problem.detail !== problem.title ? ": " + problem.detail : "")]
              .concat(lines).join("\n"), "error");
            return "refused";
          });
        });
      },
      function () { return "waiting"; } // no network: kept for later
    );
  }

  var flushing = null;
  function flush() {
    if (flushing) return flushing;
    flushing = all().then(function (items) {
      return items.reduce(function (chain, item) {
        return chain.then(function (results) { return send(item).then(function (r) { results.push(r); return results; }); });
      }, Promise.resolve([]));
    }).then(function (results) {
      flushing = null;
      return showPending().then(function (left) {
        if (results.indexOf("done") >= 0 && left.length === 0 && document.getElementById("ticket")) window.location.reload();
        return results;
      });
    }, function () { flushing = null; return []; });
    return flushing;
  }

  function formAction(form, submitter) {
    var item = { key: newKey(), url: form.dataset.api, method: form.dataset.method || "POST",
                 label: (submitter && submitter.textContent.trim()) || form.dataset.api, at: Date.now() };
    if (form.dataset.upload) {
      var input = form.querySelector('input[type="file"]');
      if (!input || !input.files.length) return null;
      item.file = input.files[0]; item.filename = input.files[0].name; item.field = input.name;
      item.fields = [];
      new FormData(form).forEach(function (value, name) {
        if (name !== input.name && typeof value === "string" && value !== "") item.fields.push([name, value]);
      });
      return item;
    }
    var json = {}, many = form.dataset.many;
    if (many) json[many] = [];
    new FormData(form).forEach(function (value, name) {
      var field = form.querySelector('[name="' + name + '"]');
      if (name === many) json[name].push(value);
      else if (field && field.dataset.list) json[name] = String(value).split(",").map(function (s) { return s.trim(); }).filter(Boolean);
      else if (field && (field.type === "number" || field.dataset.number)) json[name] = value === "" ? null : Number(value);
      else if (field && field.dataset.localTime && value) json[name] = value + (value.length === 16 ? ":00" : "") + "+07:00"; // Vietnam time
      else if (field && field.dataset.boolean) json[name] = value === "true";
      else if (name === "assignee_id") json[name] = value === "" ? null : Number(value);
      else if (value !== "") json[name] = value;
    });
    if (many && json[many].length === 0) return null;
    if (submitter && submitter.name) json[submitter.name] = submitter.value;
    item.json = json;
    item.summary = !!form.dataset.summary;
    item.summaryText = !!form.dataset.summaryText;
    item.then = form.dataset.then || "";
    return item;
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("api-form")) return;
    event.preventDefault();
    var submitter = event.submitter;
    if (submitter && submitter.dataset.confirm && !window.confirm(submitter.dataset.confirm)) return;
    var items = [];
    if (form.dataset.each) { // one action per selected row: the URL holds {id}
      var note = formAction(form, submitter);
      document.querySelectorAll('input[name="' + form.dataset.each + '"][form="' + form.id + '"]:checked').forEach(function (box) {
        var one = formAction(form, submitter);
        one.url = form.dataset.api.replace("{id}", encodeURIComponent(box.value));
        delete one.json[form.dataset.each];
        items.push(one);
      });
      if (!note || !items.length) return;
    } else {
      var item = formAction(form, submitter);
      if (!item) return;
      if (item.json && submitter && submitter.dataset.confirm) item.json.confirm = true;
      items.push(item);
    }
    items.reduce(function (chain, one) {
      return chain.then(function (results) {
        return put(one).then(function () { return send(one); }).then(function (r) { results.push(r); return results; });
      });
    }, Promise.resolve([])).then(function (results) {
      var result = results.indexOf("waiting") >= 0 ? "waiting" : results.indexOf("summary") >= 0 ? "summary" :
        results.every(function (r) { return r === "done"; }) ? "done" : "refused";
      if (result === "done") { window.location.reload(); return; }
      if (result === "summary") { setTimeout(function () { window.location.reload(); }, 2500); return; }
      if (result === "waiting") {
        say(en ? "No signal: the action is kept and will be sent when the network returns." :
                 "Không có mạng: thao tác đã được lưu và sẽ tự gửi khi có mạng trở lại.", "warn");
      }
      showPending();
    });
  });

  window.addEventListener("online", flush);
  setInterval(function () { all().then(function (items) { if (items.length) flush(); }).catch(function () {}); }, RETRY_MS);
  document.addEventListener("DOMContentLoaded", function () { showPending().then(function (items) { if (items.length) flush(); }); });
  window.monitorOutbox = { flush: flush, pending: all };
})();
