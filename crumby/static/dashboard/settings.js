/* "Verify installation": asks the server whether a hit from the site has arrived and
   says so next to the button, without leaving the page (the form works without it). */
(function () {
  "use strict";
  function init() {
    var forms = document.querySelectorAll("form.verify-form");
    Array.prototype.forEach.call(forms, function (form) {
      var result = form.querySelector(".verify-result");
      var button = form.querySelector("button");
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        button.disabled = true;
        result.className = "verify-result";
        result.textContent = "Checking…";
        fetch(form.getAttribute("action"), { headers: { Accept: "application/json" }, credentials: "same-origin" })
          .then(function (response) {
            return response.json().then(function (body) {
              if (!response.ok) throw new Error(body.error || "the check failed (" + response.status + ")");
              return body;
            });
          })
          .then(function (body) {
            result.className = "verify-result " + (body.arrived ? "ok" : "missing");
            result.textContent = body.message;
          }, function (err) {
            result.className = "verify-result missing";
            result.textContent = "Could not check: " + err.message;
          })
          .then(function () { button.disabled = false; });
      });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
