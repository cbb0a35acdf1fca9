// Keeps the key in a same-site cookie the dashboard and its API calls send.
document.getElementById("login").addEventListener("submit", function (ev) {
  ev.preventDefault();
  var key = new FormData(ev.target).get("key");
  document.cookie = "wk_key=" + encodeURIComponent(key) + "; path=/; SameSite=Strict";
  window.location.href = "/";
});
