/* Shows, as the user types, which password rules are met (no request per keystroke: the
   rules come from the form's data attributes; the server checks again on submit). */
(function () {
  "use strict";
  var form = document.getElementById("code-form");
  if (!form) { return; }
  var pw = document.getElementById("new_password");
  var again = document.getElementById("new_password_again");
  if (!pw || !again) { return; }
  var min = parseInt(form.getAttribute("data-min-length") || "15", 10);
  function length(text) {
    var n = 0;
    var normal = text.normalize ? text.normalize("NFC") : text;
    for (var i = 0; i < normal.length; i++) {
      var c = normal.charCodeAt(i);
      if (c < 0xD800 || c > 0xDBFF) { n++; }
    }
    return n;
  }
  function mark(rule, ok) {
    var item = form.querySelector('[data-rule="' + rule + '"]');
    if (!item) { return; }
    var state = item.querySelector(".rule-state");
    item.classList.toggle("rule-ok", ok);
    if (state) { state.textContent = "(" + state.getAttribute(ok ? "data-ok" : "data-todo") + ")"; }
  }
  function update() {
    mark("length", length(pw.value) >= min);
    mark("same", pw.value.length > 0 && pw.value === again.value);
  }
  pw.addEventListener("input", update);
  again.addEventListener("input", update);
  update();
}());
