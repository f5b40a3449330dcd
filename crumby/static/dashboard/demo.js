/* The demo site's buttons send events through cmb.js (loaded by the page). */
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-event]");
  if (!button) return;
  var status = document.getElementById("demo-status");
  if (window.cmb && typeof window.cmb.event === "function") {
    window.cmb.event(button.getAttribute("data-event"), button.getAttribute("data-value"));
    status.textContent = "Sent the event “" + button.getAttribute("data-event") + "”.";
  } else {
    status.textContent = "cmb.js is not loaded, so no event was sent.";
  }
});
