// The scheduler dashboard's only script. Every data-refresh-ms (on
// <body>) it re-fetches the current URL asking for the <main> element's
// content only (header X-Dashboard-Fragment: main) and swaps it in, so
// pages stay live without a reload. It skips a round while the operator
// types in a form, while the tab is hidden, and on pages whose <main> says
// data-live="off" (forms and confirmations). A failed fetch, or an answer
// that is not a fragment (a sign-in page after the session ended), leaves
// the page as it is.
(function () {
  "use strict";
  var every = Number(document.body.dataset.refreshMs) || 5000;

  function typing() {
    var el = document.activeElement;
    return !!el && !!el.closest && !!el.closest("form") &&
      /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName);
  }

  function refresh() {
    var main = document.getElementById("main");
    if (!main || main.dataset.live !== "on" || document.hidden || typing()) {
      return;
    }
    fetch(window.location.href, {
      headers: { "X-Dashboard-Fragment": "main" },
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (response) {
      if (!response.ok || response.headers.get("X-Dashboard-Fragment") !== "main") {
        return;
      }
      return response.text().then(function (html) {
        if (!typing()) {
          main.innerHTML = html;
          document.body.dataset.refreshed = new Date().toISOString();
        }
      });
    }).catch(function () {
      // Offline or the server restarting: try again next round.
    });
  }

  window.setInterval(refresh, every);
})();
