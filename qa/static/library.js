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
    fetch(form.action, { method: "POST", body: data, headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (j) {
        var said = (j.saved.length ? "Uploaded " + j.saved.join(", ") + ": indexing now. " : "") + j.errors.join(" ");
        location.href = "library?said=" + encodeURIComponent(said.trim());
      });
  });
})();
