// Drag and drop onto the upload box: the same form, posted with the dropped files.
(function () {
  var form = document.getElementById("upload");
  var drop = document.getElementById("drop");
  if (!form || !drop) { return; }
  ["dragenter", "dragover"].forEach(function (name) {
    drop.addEventListener(name, function (e) { e.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    drop.addEventListener(name, function () { drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (e) {
    e.preventDefault();
    var data = new FormData();
    data.append("token", form.querySelector("[name=token]").value);
    for (var i = 0; i < e.dataTransfer.files.length; i++) { data.append("file", e.dataTransfer.files[i]); }
    // Every answer of the upload route to this request is JSON {saved, errors}, refusals too.
    fetch(form.action, { method: "POST", body: data, headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (j) {
        var said = (j.saved.length ? "Uploaded " + j.saved.join(", ") + ": indexing now. " : "") + j.errors.join(" ");
        return [said, j.saved.length > 0];
      }, function () { return ["The upload failed: the server did not answer. Reload the page and try again.", false]; })
      .then(function (r) { location.href = "library?said=" + encodeURIComponent(r[0].trim()) + (r[1] ? "" : "&bad=1"); });
  });
})();

// While a file waits for the index, the list is looked at every few seconds (no reload, so focus
// and scrolling stay) and reloaded once when the index has it; not while files are being chosen.
(function () {
  if (!document.querySelector("main[data-pending]")) { return; }
  var left = 100;
  function again() { if (--left > 0) { setTimeout(look, 3000); } }
  function look() {
    fetch("library").then(function (r) { return r.text(); }).then(function (page) {
      var chosen = document.getElementById("file");
      var waiting = new DOMParser().parseFromString(page, "text/html").querySelector("main[data-pending]");
      if (!waiting && (!chosen || !chosen.files.length)) {
        location.replace("library");
      } else { again(); }
    }, again);
  }
  setTimeout(look, 3000);
})();
