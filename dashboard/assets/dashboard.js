// Back and Forward change the address but Panel does not follow them: load the view the address names.
window.addEventListener("popstate", function () { window.location.reload(); });
// Signed in: the login page's remembered destination (templates/login.html) has served its purpose.
try { sessionStorage.removeItem("tq-next"); } catch (e) { /* storage disabled: nothing was kept */ }
