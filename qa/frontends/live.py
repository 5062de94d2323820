"""The index kept current for a running server: `LiveIndex` watches the corpus in a background
thread, rebuilds (incrementally) when it changes or when asked, and reports its state for the
page (up to date / updating with progress / changed files / last build / last error).

Questions never wait for a build: they are answered from the live index
(`api.default_retriever`), which switches to the new generation once it is complete.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from ..config import Settings
from ..errors import QAError

log = logging.getLogger(__name__)


@dataclass
class LiveState:
    """What the page shows about the index."""

    state: str = "starting"  # "up to date", "changed", "updating", "failed", "starting"
    done: int = 0  # texts embedded so far in the build under way
    total: int = 0
    changes: dict = field(default_factory=dict)  # added / changed / removed since the last build
    built_at: str = ""  # of the live index (manifest)
    files: int = 0
    passages: int = 0
    skipped: list = field(default_factory=list)  # (path, reason) of the live index
    error: str = ""
    last_report: str = ""  # what the last build did, in words

    def to_dict(self) -> dict:
        return {
            "state": self.state, "done": self.done, "total": self.total, "changes": self.changes,
            "built_at": self.built_at, "files": self.files, "passages": self.passages,
            "skipped": [list(s) for s in self.skipped], "error": self.error, "last_report": self.last_report,
        }


class LiveIndex:
    """Keeps `settings.index_dir` current with `settings.corpus_dir` while a server runs.

    Args:
        settings: the corpus and index folders and the model.
        embedder: the embedder for builds (default: the process-wide one of the model).
        interval: seconds between looks at the corpus (file names, sizes, mtimes).
        debounce: a change is built once the corpus has stayed the same this long.
        watch: False: never build on its own, only on `request()` (`qa serve --no-watch`).
    """

    def __init__(self, settings: Settings, embedder=None, interval: float = 1.0, debounce: float = 1.5,
                 watch: bool = True):
        self.settings = settings
        self.embedder = embedder
        self.interval = interval
        self.debounce = debounce
        self.watching = watch
        self._state = LiveState()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._requested = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.builds = 0  # completed builds (tests wait on it)
        self._refresh_from_manifest()

    # --- what the page reads ---

    def status(self) -> dict:
        with self._lock:
            return self._state.to_dict()

    def request(self) -> None:
        """Re-index as soon as possible (the page's button)."""
        with self._lock:
            self._requested = True
        self._wake.set()

    # --- running ---

    def start(self) -> "LiveIndex":
        if self._thread is None:
            self._seen = self._snapshot()  # taken now: a change made right after start() counts
            self._thread = threading.Thread(target=self._run, name="qa-live-index", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _set(self, **values) -> None:
        with self._lock:
            for key, value in values.items():
                setattr(self._state, key, value)

    def _refresh_from_manifest(self) -> None:
        from ..build import corpus_changes, read_manifest

        try:
            manifest = read_manifest(self.settings)
        except QAError as exc:
            self._set(state="failed", error=str(exc))
            return
        if manifest is None:
            self._set(state="changed", changes={}, files=0, passages=0)
            return
        changes = corpus_changes(self.settings, manifest) or {}
        with self._lock:
            s = self._state
            s.built_at = manifest.get("built_at", "")
            s.files = len(manifest.get("files", {}))
            s.passages = int(manifest.get("passages", 0))
            s.skipped = [tuple(x) for x in manifest.get("skipped", [])]
            s.changes = changes
            if s.state != "updating":
                s.state = "changed" if any(changes.values()) else "up to date"

    def _snapshot(self):
        from ..build import snapshot
        from ..errors import CorpusEmpty

        try:
            return snapshot(self.settings.corpus_dir)
        except CorpusEmpty:
            return None

    def _run(self) -> None:
        seen = self._seen
        if self.watching and self.status()["state"] == "changed":
            self._build()
            seen = self._snapshot()
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._lock:
                requested, self._requested = self._requested, False
            now = self._snapshot()
            if now != seen:
                self._refresh_from_manifest()  # the page shows "changed: a.txt" at once
            if requested or (self.watching and now != seen):
                if not requested:  # wait until the corpus stays still (a burst of saves: one build)
                    while not self._stop.wait(self.debounce):
                        later = self._snapshot()
                        if later == now:
                            break
                        now = later
                    if self._stop.is_set():
                        return
                self._build()
                seen = self._snapshot()

    def _build(self) -> None:
        from ..build import build_index

        def progress(done: int, total: int) -> None:
            self._set(done=done, total=total)

        self._set(state="updating", done=0, total=0, error="")
        try:
            report = build_index(self.settings, self.embedder, progress)
        except QAError as exc:
            log.warning("qa: re-indexing failed: %s", exc)
            self._set(state="failed", error=str(exc))
            self.builds += 1
            return
        except Exception as exc:  # a bug must not kill the watcher; the page shows it
            log.exception("qa: re-indexing failed")
            self._set(state="failed", error=f"{type(exc).__name__}: {exc}")
            self.builds += 1
            return
        if report.mode == "unchanged":
            words = "nothing to do"
        else:
            words = (f"{len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} removed"
                     if report.mode == "incremental" else f"full build ({report.reason or 'first build'})")
        self._set(state="up to date", last_report=f"{words} in {report.seconds:.1f} s")
        self._refresh_from_manifest()
        self.builds += 1

    def wait_idle(self, builds: int, timeout: float = 60.0) -> bool:
        """Wait until `builds` builds have completed (for tests and scripts)."""
        end = time.monotonic() + timeout
        while self.builds < builds and time.monotonic() < end:
            time.sleep(0.05)
        return self.builds >= builds


def status_html(status: dict) -> str:
    """The page's index line: state, progress, changed files, counts and last build."""
    import html

    def plural(n: int, word: str) -> str:
        return f"{n:,} {word}{'s' * (n != 1)}"

    state = status["state"]
    counts = f"{plural(status['files'], 'file')}, {plural(status['passages'], 'passage')}"
    built = status["built_at"][:19].replace("T", " ") + " UTC" if status["built_at"] else "never"
    changed = [f for kind in ("added", "changed", "removed") for f in (status["changes"] or {}).get(kind, [])]
    if state == "updating":
        if status["total"]:
            pct = 100 * status["done"] // max(1, status["total"])
            head = f"Updating the index: {status['done']:,} of {status['total']:,} texts embedded ({pct}%)"
        else:
            head = "Updating the index…"
        head += "; answers come from the previous index until it is done"
    elif state == "failed":
        head = f"The last update failed: {status['error']}"
    elif state == "unusable":
        head = f"The index cannot be used: {status['error']}"
    elif state == "changed":
        shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        head = f"Files changed since the last build: {shown}" if changed else "No index yet"
    else:
        head = "Index up to date"
    cls = {"updating": "busy", "failed": "bad", "unusable": "bad", "changed": "stale"}.get(state, "ok")
    skipped = status.get("skipped") or []
    skip = f" · {plural(len(skipped), 'file')} skipped" if skipped else ""
    return (
        f'<div class="qa-status qa-status-{cls}" role="status" aria-live="polite">'
        f'<span class="qa-status-state">{html.escape(head)}</span>'
        f'<span class="qa-status-counts"> · {html.escape(counts)}{skip} · last build {html.escape(built)}</span></div>'
    )
