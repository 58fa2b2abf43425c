/* Live step progress of one ticket: server-sent events from the ledger's step rows.
   Without JavaScript the page refreshes itself (meta refresh); with it, the refresh is
   cancelled and each step appears as it is written. */
(function () {
  "use strict";
  var box = document.getElementById("outcome");
  var list = document.getElementById("steps");
  if (!box || !list || !window.EventSource || box.getAttribute("data-done") === "true") { return; }
  var refresh = document.querySelector('meta[http-equiv="refresh"]');
  if (refresh) { refresh.parentNode.removeChild(refresh); }
  var url = box.getAttribute("data-events") + "?after=" + encodeURIComponent(box.getAttribute("data-after") || "0");
  var source = new EventSource(url);
  function text(el, value) { el.textContent = value == null ? "" : String(value); }
  source.addEventListener("step", function (ev) {
    var s = JSON.parse(ev.data);
    var item = document.getElementById("step-" + s.seq);
    if (!item) {
      item = document.createElement("li");
      item.id = "step-" + s.seq;
      var title = document.createElement("span");
      title.className = "step-title";
      var status = document.createElement("span");
      status.className = "step-status";
      item.appendChild(title);
      item.appendChild(document.createTextNode(" — "));
      item.appendChild(status);
      list.appendChild(item);
    }
    item.className = "step step-" + s.status;
    text(item.querySelector(".step-title"), s.title);
    text(item.querySelector(".step-status"), s.status_text + (s.status === "failed" && s.message ? ": " + s.message : ""));
  });
  // An answer the stream cannot use (a 4xx or 5xx ends an EventSource for good): go back to
  // what the page does without JavaScript, a reload a few seconds later, so it never stays stuck.
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) { window.setTimeout(function () { window.location.reload(); }, 3000); }
  });
  source.addEventListener("done", function (ev) {
    var d = JSON.parse(ev.data);
    text(document.getElementById("outcome-label"), d.outcome.label);
    text(document.getElementById("outcome-next"), d.outcome.next);
    // the outcome in plain words, as the page shows it after a reload (resolution note or reason)
    if (d.message) { text(document.getElementById("outcome-message"), d.message); }
    box.className = "notice outcome-" + d.outcome.code;
    box.setAttribute("data-done", "true");
    source.close();
  });
}());
