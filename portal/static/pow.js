/* Proof of work for the code request form (runner/pow.py; security.md item 5).
   Finds a nonce such that SHA-256(challenge + ":" + nonce) starts with `bits` zero bits,
   with Web Crypto only (no library, no CDN), starting as soon as the page loads. The form
   is sent once the nonce is found. Texts come from the page's language via data attributes
   on #pow-status (set below in English when absent). */
(function () {
  "use strict";
  var form = document.getElementById("pow-form");
  if (!form) { return; }
  var token = form.getAttribute("data-pow-challenge") || "";
  var bits = parseInt(form.getAttribute("data-pow-bits") || "0", 10);
  var field = document.getElementById("pow_nonce");
  var status = document.getElementById("pow-status");
  var button = form.querySelector("button[type=submit]");
  var solved = false;
  var wantSubmit = false;
  function say(text) { if (status) { status.textContent = text; } }
  if (!window.crypto || !window.crypto.subtle || !window.TextEncoder) {
    say(status && status.getAttribute("data-unsupported") ||
        "This browser cannot do the check (it needs a secure connection). Use another browser, or contact the service desk.");
    if (button) { button.disabled = true; }
    return;
  }
  var encoder = new TextEncoder();
  function zeroBits(buffer) {
    var bytes = new Uint8Array(buffer);
    var n = 0;
    for (var i = 0; i < bytes.length; i++) {
      var b = bytes[i];
      if (b === 0) { n += 8; continue; }
      while ((b & 0x80) === 0) { n++; b <<= 1; }
      return n;
    }
    return n;
  }
  var BATCH = 512;
  function batch(start) {
    var jobs = [];
    for (var k = 0; k < BATCH; k++) {
      jobs.push(window.crypto.subtle.digest("SHA-256", encoder.encode(token + ":" + (start + k))));
    }
    return Promise.all(jobs).then(function (digests) {
      for (var k = 0; k < digests.length; k++) {
        if (zeroBits(digests[k]) >= bits) { return start + k; }
      }
      return batch(start + BATCH);
    });
  }
  say(status && status.getAttribute("data-working") || "Your browser is doing a short check…");
  batch(0).then(function (nonce) {
    field.value = String(nonce);
    solved = true;
    say(status && status.getAttribute("data-done") || "Check done. You can send the form.");
    if (wantSubmit) { form.submit(); }
  });
  form.addEventListener("submit", function (event) {
    if (solved) { return; }
    event.preventDefault();
    wantSubmit = true;
    say(status && status.getAttribute("data-working") || "Your browser is doing a short check…");
  });
}());
