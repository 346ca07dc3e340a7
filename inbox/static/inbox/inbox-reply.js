// The ticket page: choosing a reply template puts its text in the answer box at once.
// An answer already typed is only replaced after asking. Without JavaScript, saving
// with a template chosen and the box empty brings the page back with the text in it.
"use strict";
document.addEventListener("change", function (event) {
  var select = event.target;
  if (!select.matches || !select.matches("select[name='reply_template']")) return;
  var option = select.options[select.selectedIndex];
  var box = document.querySelector("textarea[name='answer']");
  if (!box || !option || option.dataset.text === undefined) return;
  if (box.value.trim() && !window.confirm(select.dataset.replace || "Replace the text in the answer box?")) return;
  box.value = option.dataset.text;
  select.selectedIndex = 0;
  box.focus();
});
