// chemomet web app: the only script (served as a file; the pages' CSP allows no inline script).
// The job page polls its status and moves to the result when it is ready; a job that ends cancelled or failed
// reloads the page once, so the server shows what can be done next (resume a trial).
(function () {
  "use strict";
  var box = document.querySelector("[data-job-status]");
  if (!box) { return; }
  var initial = box.getAttribute("data-state");
  if (initial === "done" || initial === "failed" || initial === "cancelled") { return; }
  var url = box.getAttribute("data-job-status");
  var bar = document.getElementById("job-progress");
  var step = document.getElementById("job-step");
  var error = document.getElementById("job-error");
  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        box.setAttribute("data-state", s.state);
        if (typeof s.fraction === "number") { bar.value = s.fraction; bar.textContent = Math.round(100 * s.fraction) + "%"; }
        if (s.step) { step.textContent = s.step; }
        if (s.state === "done" && s.result && typeof s.result.url === "string" && s.result.url.charAt(0) === "/") {
          window.location.assign(s.result.url);
          return;
        }
        if (s.state === "failed" || s.state === "cancelled") {
          window.location.reload();
          return;
        }
        if (s.state === "unknown") {
          error.textContent = "This job is unknown (the server may have restarted).";
          error.hidden = false;
          return;
        }
        window.setTimeout(poll, 400);
      })
      .catch(function () { window.setTimeout(poll, 1500); });
  }
  poll();
}());
