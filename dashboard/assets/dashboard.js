// Back and Forward change the address but Panel does not follow them: load the view the address names.
window.addEventListener("popstate", function () { window.location.reload(); });
