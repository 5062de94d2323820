() => {
  let tries = 0;
  const go = () => {
    const qs = document.querySelectorAll('#qa-chat .qa-q');
    const last = qs[qs.length - 1];
    if (!last) { if (tries++ < 20) setTimeout(go, 50); return; }
    let box = last.parentElement;
    while (box && !(box.scrollHeight > box.clientHeight + 1 && /(auto|scroll)/.test(getComputedStyle(box).overflowY))) {
      box = box.parentElement;
    }
    if (box) {
      box.scrollTop += last.getBoundingClientRect().top - box.getBoundingClientRect().top - 12;
    }
  };
  setTimeout(go, 150);
}
