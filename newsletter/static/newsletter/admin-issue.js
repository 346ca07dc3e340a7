/* Issue pages of the admin: reorder items with arrows, follow the sending progress,
   size the HTML preview. Plain JavaScript, nothing loaded from elsewhere. */
"use strict";

(function () {
  function itemRows() {
    return Array.from(document.querySelectorAll(".issue-items tbody tr.form-row"))
      .filter((row) => !row.classList.contains("empty-form") && row.querySelector("input[name$='-position']"));
  }

  function renumber() {
    // Positions follow the rows as shown; pins still come first within a section.
    itemRows().forEach((row, index) => {
      row.querySelector("input[name$='-position']").value = (index + 1) * 10;
    });
  }

  function move(row, step) {
    const rows = itemRows();
    const index = rows.indexOf(row);
    const other = rows[index + step];
    if (!other) return;
    if (step < 0) other.before(row); else other.after(row);
    rows.forEach((r) => r.classList.remove("issue-moved"));
    row.classList.add("issue-moved");
    renumber();
  }

  function addArrows() {
    itemRows().forEach((row) => {
      const input = row.querySelector("input[name$='-position']");
      if (input.readOnly || input.disabled || row.querySelector(".issue-move")) return;
      const box = document.createElement("span");
      box.className = "issue-move";
      [["▲", -1, "Move up"], ["▼", 1, "Move down"]].forEach(([label, step, title]) => {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = label;
        button.title = title;
        button.setAttribute("aria-label", title);
        button.className = step < 0 ? "issue-move-up" : "issue-move-down";
        button.addEventListener("click", () => move(row, step));
        box.appendChild(button);
      });
      input.after(box);
    });
  }

  function followProgress() {
    const box = document.querySelector(".issue-progress[data-status='sending']");
    if (!box) return;
    const timer = setInterval(async () => {
      let data;
      try {
        const response = await fetch(box.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (!response.ok) return;
        data = await response.json();
      } catch (error) {
        return; // a dropped request: try again at the next tick
      }
      box.querySelectorAll("[data-field]").forEach((el) => {
        const value = data[el.dataset.field];
        if (value !== undefined && value !== null) el.textContent = value;
      });
      box.querySelector(".issue-progress-fill").style.width = data.percent + "%";
      box.querySelector(".issue-progress-bar").setAttribute("aria-valuenow", data.percent);
      if (data.status !== "sending") {
        clearInterval(timer);
        window.location.reload(); // show the finished page, with its links
      }
    }, 2000);
  }

  function sizePreview() {
    document.querySelectorAll("iframe.preview-frame").forEach((frame) => {
      const fit = () => {
        try {
          const doc = frame.contentDocument;
          if (doc && doc.readyState === "complete" && doc.body) {
            frame.style.height = doc.body.scrollHeight + 24 + "px";
          }
        } catch (error) {
          /* not same-origin: keep the CSS height */
        }
      };
      frame.addEventListener("load", fit);
      fit(); // it may have loaded before this script ran
    });
  }

  function start() {
    addArrows();
    followProgress();
    sizePreview();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
