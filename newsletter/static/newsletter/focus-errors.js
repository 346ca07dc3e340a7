// After a failed submit, move focus (and the view) to the error summary, which may sit
// far down the page (the erase form is at the bottom of the preferences). The summary
// also carries `autofocus`; this covers browsers that ignore it on a non-control.
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.querySelector(".error-summary");
  if (summary && document.activeElement !== summary) {
    summary.setAttribute("tabindex", "-1");
    summary.focus();
  }
});
