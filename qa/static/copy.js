// Copy buttons on the answer and on every source card (plain text and Markdown, each with its
// citation), and the conversation exported as Markdown. Buttons are added to the rendered
// replies here, so the chat's HTML sanitiser never sees them.
(function () {
  function citeOf(box) {
    var a = box.querySelector(".qa-cite a, .qa-head a.qa-link");
    return a ? { text: a.textContent.trim(), url: new URL(a.getAttribute("href"), location.href).href } : { text: "", url: "" };
  }
  function bodyOf(box) {
    var el = box.querySelector("blockquote") || box.querySelector(".qa-text");
    return el ? el.innerText.replace(/\s+/g, " ").trim() : "";
  }
  function plain(box) { var c = citeOf(box); return "\u201c" + bodyOf(box) + "\u201d (" + c.text + ")"; }
  function markdown(box) {
    var c = citeOf(box);
    return "> " + bodyOf(box) + "\n>\n> \u2014 [" + c.text + "](" + c.url + ")";
  }
  window.qaCopyText = { plain: plain, markdown: markdown };
  function copy(text, button) {
    var done = function () { var old = button.textContent; button.textContent = "Copied"; setTimeout(function () { button.textContent = old; }, 1200); };
    if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(text).then(done, done); }
    else {
      var area = document.createElement("textarea"); area.value = text; document.body.appendChild(area);
      area.select(); try { document.execCommand("copy"); } catch (e) {} area.remove(); done();
    }
    window.qaLastCopied = text;
  }
  function addButtons(box, where) {
    if (box.querySelector(":scope > .qa-copies")) { return; }
    var span = document.createElement("span"); span.className = "qa-copies";
    [["Copy", plain], ["Copy as Markdown", markdown]].forEach(function (pair) {
      var b = document.createElement("button"); b.type = "button"; b.className = "qa-copy"; b.textContent = pair[0];
      b.setAttribute("aria-label", pair[0] + (where ? " " + where : ""));
      b.addEventListener("click", function () { copy(pair[1](box), b); });
      span.appendChild(b);
    });
    box.appendChild(span);
  }
  function decorate() {
    document.querySelectorAll("#qa-chat .qa-answer").forEach(function (box) { addButtons(box, "the answer"); });
    document.querySelectorAll("#qa-chat .qa-card").forEach(function (box) {
      var n = box.querySelector(".qa-num"); addButtons(box, n ? "source " + n.textContent : "source");
    });
  }
  new MutationObserver(decorate).observe(document.documentElement, { childList: true, subtree: true });

  // The conversation as Markdown: each question, its answer with citation, its sources.
  window.qaExport = function () {
    var out = ["# Conversation", ""];
    document.querySelectorAll("#qa-chat .qa-q, #qa-chat .qa-reply").forEach(function (el) {
      if (el.classList.contains("qa-q")) { out.push("## " + el.innerText.trim(), ""); return; }
      var answer = el.querySelector(".qa-answer");
      var nf = el.querySelector(".qa-notfound");
      if (answer) { out.push("**Answer**", "", markdown(answer), ""); }
      if (nf) { out.push("*" + nf.innerText.trim() + "*", ""); }
      var cards = el.querySelectorAll(".qa-card");
      if (cards.length) { out.push(answer ? "**Sources**" : "**Related passages (none of them answers it)**", ""); }
      cards.forEach(function (card) {
        var n = card.querySelector(".qa-num"); out.push((n ? n.textContent + " " : "") + "", markdown(card), "");
      });
    });
    var text = out.join("\n");
    window.qaLastExport = text;
    var a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([text], { type: "text/markdown" }));
    a.download = "conversation.md"; document.body.appendChild(a); a.click(); a.remove();
    return text;
  };
})();
