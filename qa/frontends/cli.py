"""The `qa` command: parse arguments, call `qa.build` / `qa.retriever`, print (`qa.render`). Errors become messages and exit codes:
1 for a failure, 2 for bad usage or input; never a traceback."""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import signal
import sys
import time

from .._version import __version__
from ..config import Settings, api_token_from_env
from ..errors import BadInput, IndexCorrupt, QAError

log = logging.getLogger("qa")

EPILOG = """examples:
  qa index                          build or update index/ from corpus/ (--full: from scratch)
  qa index --watch                  keep it up to date while you edit corpus/
  qa status                         which index, which model, is it up to date
  qa ask "Who leads the NCRI?"      answer in the terminal, with citations
  qa ask "Who leads the NCRI?" --json
  qa serve                          web chat, REST API (/api/v1) and MCP (/mcp) on http://127.0.0.1:7860
  qa mcp                            MCP server on stdin/stdout, for a desktop assistant
  qa eval path/to/beir-folder --split test      nDCG@10, Recall@10/100, MRR@10
  qa eval questions.jsonl           hit@1/3/5, MRR, "not found" rates on the corpus

  qa index --store milvus --milvus-uri http://host:19530      the index on a Milvus server

environment: QA_CORPUS_DIR, QA_INDEX_DIR, QA_MODEL, QA_STORE, QA_MILVUS_URI, QA_MILVUS_TOKEN,
QA_MILVUS_PREFIX (flags win over them), QA_AUTH, QA_API_TOKEN."""


def _common(parser: argparse.ArgumentParser, corpus: bool = True) -> None:
    if corpus:
        parser.add_argument("--corpus", metavar="DIR", help="documents folder (env QA_CORPUS_DIR, default corpus/)")
    parser.add_argument("--index", metavar="DIR", help="index folder (env QA_INDEX_DIR, default index/)")
    parser.add_argument("--model", metavar="NAME", help="sentence-transformers model name or path (env QA_MODEL)")
    parser.add_argument("--store", choices=("local", "milvus"), help="where the index lives (env QA_STORE, default local: the --index folder)")
    parser.add_argument("--milvus-uri", metavar="URI", help="with --store milvus: http://host:19530, or a file path ending in .db for Milvus Lite "
                        "(env QA_MILVUS_URI, default INDEX/milvus.db; token: env QA_MILVUS_TOKEN)")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qa",
        description="Ask questions of your documents; every answer is a cited passage.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"qa {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "index",
        help="build or update the index from the corpus",
        description="Update the index: new and changed files are embedded, unchanged ones keep "
        "their vectors, deleted ones drop out. A changed model or chunking rebuilds everything.",
    )
    _common(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--full", action="store_true", help="rebuild everything, reusing nothing")
    p.add_argument("--watch", action="store_true", help="keep watching the corpus and re-index when it changes (Ctrl-C stops)")
    p.add_argument("--interval", type=float, default=1.0, metavar="SECONDS", help="with --watch: how often to look (default 1)")

    p = sub.add_parser("ask", help="answer one question in the terminal")
    p.add_argument("question", help="the question (quote it)")
    p.add_argument("-k", type=int, default=5, help="how many passages (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--source", action="append", metavar="PATTERN", help="only files matching (glob or part of the path); repeatable")
    p.add_argument("--scores", action="store_true", help="show why each passage ranked where it did (score parts)")
    _common(p)

    p = sub.add_parser(
        "serve",
        help="web chat, REST API and MCP (HTTP) on localhost",
        description="The web chat at /, the REST API at /api/v1 (docs at /api/v1/docs) and MCP over "
        "streamable HTTP at /mcp, in one server. With --auth, all of them need the login; the API "
        "and MCP also take `Authorization: Bearer $QA_API_TOKEN`.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--auth", metavar="USER:PASSWORD", help="require this login (visible in `ps`: prefer --auth-file or env QA_AUTH)")
    p.add_argument("--auth-file", metavar="FILE", help="require the login USER:PASSWORD written on the first line of FILE")
    p.add_argument("--allowed-hosts", metavar="NAMES", action="append", default=[],
                   help="more Host names to answer, comma-separated ('*': any); default: the --host name and localhost")
    p.add_argument("--no-watch", dest="watch", action="store_false",
                   help="do not re-index when the corpus changes (the page's re-index button still works)")
    p.add_argument("--allow-upload", action="store_true",
                   help="let the document library page add files to the corpus (and delete them)")
    _common(p)

    p = sub.add_parser(
        "mcp",
        help="MCP server on stdin/stdout (for a desktop assistant)",
        description="Serve the tools search, read_source, list_sources and index_status over MCP's "
        "stdio transport. The index must exist (`qa index`); the model loads at the first search.",
    )
    _common(p)

    p = sub.add_parser("eval", help="measure retrieval on a BEIR folder or a QA .jsonl file")
    p.add_argument("dataset", help="BEIR folder (corpus.jsonl[.gz], queries.jsonl, qrels/SPLIT.tsv) or QA .jsonl")
    p.add_argument("--split", default="test", help="qrels split of a BEIR folder (default test)")
    p.add_argument("-k", type=int, default=5, help="passages per question for a QA file (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--cache", metavar="DIR", help="embedding cache folder (default ~/.cache/qa)")
    _common(p)

    p = sub.add_parser("status", help="which index is there, and whether the corpus changed since")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--verify", action="store_true",
                   help="check the sha256 of every index file (a quick check of sizes and samples is always made)")
    _common(p)
    return parser


def _settings(args) -> Settings:
    return Settings.from_env(
        corpus_dir=getattr(args, "corpus", None), index_dir=getattr(args, "index", None), model=args.model,
        store=getattr(args, "store", None), milvus_uri=getattr(args, "milvus_uri", None),
    )


def _progress(quiet: bool):
    """A tqdm bar on stderr as a progress callback, created at the first update; and its closer."""
    if quiet:
        return None, lambda: None
    bars = []

    def update(done: int, total: int) -> None:
        if not bars:
            from tqdm import tqdm

            bars.append(tqdm(total=total, unit="text", desc="embedding", file=sys.stderr, dynamic_ncols=True))
        bars[0].n = done
        bars[0].refresh()

    def close() -> None:
        for bar in bars:
            bar.close()

    return update, close


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _summary(report) -> str:
    if getattr(report, "mode", "full") == "unchanged":
        lines = [
            f"Index is up to date: {_plural(report.files, 'file')}, {_plural(report.passages, 'passage')} "
            f"({report.index_path}); nothing to do."
        ]
    else:
        lines = [
            f"Indexed {_plural(report.files, 'file')}: {_plural(report.passages, 'passage')}, "
            f"{_plural(report.sentences, 'sentence')}, in {report.seconds:.1f} s with {report.model} → {report.index_path}"
        ]
    if getattr(report, "mode", "full") == "incremental":
        lines.append(
            f"Updated: {len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} removed; "
            f"{_plural(report.reused, 'file')} reused, {_plural(report.embedded, 'text')} embedded."
        )
    elif getattr(report, "mode", "full") == "full" and getattr(report, "reason", ""):
        lines.append(f"Full rebuild: {report.reason}.")
    if report.skipped:
        lines.append(f"Skipped {len(report.skipped)} file{'s' * (len(report.skipped) != 1)}:")
        lines += [f"  {path}: {reason}" for path, reason in report.skipped]
    return "\n".join(lines)


def cmd_index(args) -> int:
    from ..build import build_index

    settings = _settings(args)
    if args.watch:
        return _watch(settings, args)
    update, close = _progress(args.quiet)
    try:
        report = build_index(settings, progress=update, full=args.full, say=_say)
    finally:
        close()
    print(_summary(report))
    return 0


class _StopFlag:
    """The `stop` of `qa.build.watch` for a signal handler to set: a plain flag, because
    `threading.Event.set` takes a lock the interrupted main thread may hold."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not self._set and (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))
        return self._set


def _watch(settings: Settings, args) -> int:
    from ..build import build_index, watch

    if not math.isfinite(args.interval) or args.interval <= 0:
        raise BadInput(f"--interval must be a positive number of seconds, not {args.interval}.")
    if args.full:
        print(_summary(build_index(settings, full=True)), flush=True)

    def on_build(report) -> None:
        if report.mode != "unchanged" or not getattr(on_build, "said", False):
            print(_summary(report), flush=True)
        on_build.said = True

    def on_error(exc) -> None:
        print(f"qa: {exc}", file=sys.stderr, flush=True)

    stop = _StopFlag()

    def on_signal(*_) -> None:
        # The first Ctrl-C (or TERM) stops the loop once a build under way is complete; a second
        # one stops at once (the build is abandoned: the live index stays as it was).
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    _say(f"Watching {settings.corpus_dir}/ for changes (Ctrl-C to stop) ...")
    try:
        watch(settings, on_build=on_build, on_error=on_error, interval=args.interval,
              debounce=max(args.interval, 1.0), stop=stop)
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _say("Stopped watching.")
    return 0


def _ensure(settings: Settings) -> None:
    from ..build import ensure_index

    update, close = _progress(not sys.stderr.isatty())
    try:
        report = ensure_index(settings, progress=update, say=_say)
    finally:
        close()
    if report:
        _say(_summary(report))


def cmd_ask(args) -> int:
    from ..limits import validate_request
    from ..render import render_text, to_json
    from ..retriever import Retriever

    question, k, _ = validate_request(args.question, args.k, args.source)  # before any index work
    settings = _settings(args)
    _ensure(settings)
    retriever = Retriever.load(settings=settings)
    answer = retriever.ask(question, k, sources=args.source)
    if args.json:
        print(to_json(answer))
    else:
        width = min(100, shutil.get_terminal_size((100, 24)).columns)
        sys.stdout.write(render_text(answer, color=sys.stdout.isatty(), width=width, scores=args.scores,
                                     scope=[s for s in args.source or [] if s.strip()] or None))
    return 0


def read_auth_file(path: str) -> str:
    """The login USER:PASSWORD on the first line of `path` (warning when others may read it).

    Raises:
        BadInput: the file cannot be read or its first line is empty.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            line = fh.readline().rstrip("\r\n")
        mode = os.stat(path).st_mode
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"Cannot read --auth-file {path} ({getattr(exc, 'strerror', None) or exc}). "
                       "Write USER:PASSWORD on its first line.") from None
    if not line:
        raise BadInput(f"--auth-file {path} is empty: write USER:PASSWORD on its first line.")
    if mode & 0o077:
        _say(f"Warning: {path} can be read by other users: `chmod 600 {path}`.")
    return line


def _auth(args, settings: Settings) -> str | None:
    """The web login: --auth, else --auth-file, else QA_AUTH."""
    if args.auth and args.auth_file:
        raise BadInput("Give --auth or --auth-file, not both.")
    if args.auth:
        _say("Warning: --auth shows the password to anyone on this machine who runs `ps`; "
             "use --auth-file FILE or the QA_AUTH environment variable instead.")
        return args.auth
    if args.auth_file:
        return read_auth_file(args.auth_file)
    return settings.auth


def cmd_serve(args) -> int:
    from .server import bind, parse_auth, serve

    settings = _settings(args)
    auth = _auth(args, settings)
    parse_auth(auth)  # a malformed login is refused before any index work
    sock = bind(args.host, args.port)  # and a port in use, before saying anything is served
    try:
        from ..build import index_state

        if args.watch and index_state(settings) == "stale":
            # Serve the index there is at once; the server's watcher brings it up to date.
            _say(f"{settings.corpus_dir}/ changed since the index was built: updating it while serving.")
        else:
            try:
                _ensure(settings)
            except IndexCorrupt:  # serve anyway: the chat names the damaged file and the fix
                pass
        serve(settings, host=args.host, port=args.port, auth=auth, api_token=api_token_from_env(), say=_say,
              allowed_hosts=args.allowed_hosts, watch=args.watch, allow_upload=args.allow_upload, sock=sock)
    finally:
        sock.close()
    return 0


def cmd_mcp(args) -> int:
    from .mcp_server import run_stdio

    run_stdio(_settings(args))
    return 0


def cmd_eval(args) -> int:
    import json

    from ..evaluation import DEFAULT_CACHE, evaluate, format_report

    result = evaluate(args.dataset, split=args.split, k=args.k, settings=_settings(args),
                      cache_dir=args.cache or DEFAULT_CACHE)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


def cmd_status(args) -> int:
    import json

    from ..build import status

    settings = _settings(args)
    info = status(settings, verify=args.verify)
    state, changes, problem = info["state"], info["changes"], info.get("problem")
    manifest = info["model"] is not None
    if args.json:
        print(json.dumps(info, indent=2))
        return 1 if problem else 0
    run = info["index_command"]
    meaning = {
        "ok": "up to date with the corpus",
        "stale": f"{settings.corpus_dir}/ changed since the build: run `{run}`",
        "missing": f"no index: run `{run}`",
        "model": f"built with another model than {settings.model!r}: run `{run}`",
        "damaged": problem,
    }[state]
    print(f"index:    {info['generation'] or (settings.index_dir if settings.store == 'local' else info['where'])}")
    if manifest and (info["generation"] or settings.store != "local"):
        print(f"model:    {info['model']}")
        skipped = f", {info['skipped']} skipped" if info["skipped"] else ""
        print(f"passages: {info['passages']} from {_plural(info['files'], 'file')}{skipped}")
        print(f"built:    {info['built_at']}")
    print(f"state:    {state} ({meaning})")
    if changes and any(changes.values()):
        for kind in ("added", "changed", "removed"):
            if changes[kind]:
                shown = ", ".join(changes[kind][:5]) + (" ..." if len(changes[kind]) > 5 else "")
                print(f"  {kind + ':':9}{len(changes[kind])} ({shown})")
    if args.verify and not problem:
        print("verified: every index file matches its sha256")
    return 1 if problem else 0


COMMANDS = {"index": cmd_index, "ask": cmd_ask, "serve": cmd_serve, "mcp": cmd_mcp, "status": cmd_status,
            "eval": cmd_eval}


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)  # libraries that set their own logger to DEBUG (bm25s) stay quiet
    # pypdf logs every oddity of a PDF it can still read; our one warning per skipped file is enough.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    # Library chatter (model-loading bars, parallelism notes) is not the user's business.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    # Undecodable bytes of the command line (a path, a pattern) are printed escaped, never a traceback.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # the chat reports nothing anywhere
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe (`| head`) shows here, where it is caught
        return code
    except BrokenPipeError:
        # The reader stopped reading (`qa ask ... --json | head -c 100`): not an error of ours.
        # Point stdout at /dev/null so the interpreter's final flush stays quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except QAError as exc:
        print(f"qa: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("qa: interrupted", file=sys.stderr)
        return 130
