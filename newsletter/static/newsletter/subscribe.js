// Reload the identifying code in place. Without JavaScript the Reload button submits
// the form and the page comes back with a new picture and everything typed kept.
document.addEventListener("click", function (event) {
  var button = event.target.closest(".reload-code");
  if (!button || !window.fetch) return;
  event.preventDefault();
  var box = button.closest(".field") || document;
  fetch(button.dataset.refreshUrl, { headers: { "X-Requested-With": "XMLHttpRequest" } })
    .then(function (response) { return response.json(); })
    .then(function (data) {
      var image = box.querySelector(".code-image");
      var key = box.querySelector("input[type=hidden][name$='_0']");
      var answer = box.querySelector("input[type=text]");
      var audio = box.querySelector(".code-audio");
      image.src = data.image_url;
      if (audio && data.audio_url) audio.href = data.audio_url;
      key.value = data.key;
      answer.value = "";
      answer.focus();
    })
    .catch(function () { button.form.requestSubmit(button); });
});
