/* Shows, as the user types, which password rules are met (no request per keystroke: the
   rules come from the page's data attributes; the server checks again on submit). Serves
   every new-password form: the reset-code form (#code-form) and a fix form that sets a
   password (runner.fixes FormField.confirm: the inputs marked data-new-password and
   data-new-password-again, the rules in the element with data-min-length). */
(function () {
  "use strict";
  function length(text) {
    var n = 0;
    var normal = text.normalize ? text.normalize("NFC") : text;
    for (var i = 0; i < normal.length; i++) {
      var c = normal.charCodeAt(i);
      if (c < 0xD800 || c > 0xDBFF) { n++; }
    }
    return n;
  }
  function watch(rules, pw, again) {
    if (!rules || !pw || !again) { return; }
    var min = parseInt(rules.getAttribute("data-min-length") || "15", 10);
    function mark(rule, ok) {
      var item = rules.querySelector('[data-rule="' + rule + '"]');
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
  }
  var code = document.getElementById("code-form");
  if (code) {
    watch(code, document.getElementById("new_password"), document.getElementById("new_password_again"));
  }
  var forms = document.querySelectorAll("form.fix-form");
  for (var i = 0; i < forms.length; i++) {
    var form = forms[i];
    watch(form.querySelector(".password-rules"), form.querySelector("[data-new-password]"),
          form.querySelector("[data-new-password-again]"));
  }
}());
