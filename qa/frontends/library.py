"""The document library: a page listing every file of the corpus (type, size, passages, when
indexed; skipped files with the reason), upload (opt-in) and delete with confirmation.

Self-contained Starlette routes (`library_routes`) that any ASGI app can mount: today's Gradio
launch passes them as extra routes; a FastAPI app can `app.router.routes.extend(...)` them.
Uploads are our own route (never Gradio's upload component): one supported file at a time,
type and size limited, saved under a safe name, indexed at once through `on_change`.
Every route honours the login (`authorised(request)`), and every form carries a token tied to
this server process (no cross-site posts).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import os
import re
import secrets
import unicodedata
from pathlib import Path, PurePosixPath
from typing import Callable
from urllib.parse import quote

from ..build import FORMATS, format_of, list_files

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()+-]+")


class UploadRefused(ValueError):
    """An upload that cannot be taken; the message says why and what to do."""


def safe_name(name: str) -> str:
    """A plain file name for an uploaded file: no folders, no leading dot, no control or
    shell-special characters (accents folded to ASCII), at most 120 characters.

    Raises:
        UploadRefused: nothing usable is left, or the type is not supported.
    """
    base = PurePosixPath(str(name).replace("\\", "/")).name
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    base = _UNSAFE.sub("_", base).strip(" ._")
    stem, dot, suffix = base.rpartition(".")
    if not dot or not stem:
        raise UploadRefused(f"{name!r} has no usable name with a file type: rename it, e.g. notes.txt.")
    if "." + suffix.lower() not in FORMATS:
        raise UploadRefused(
            f"{name!r}: .{suffix} files are not supported; upload one of "
            + ", ".join(sorted({s for s in FORMATS if s not in ('.markdown', '.htm')})) + "."
        )
    return f"{stem[:110]}.{suffix.lower()}"


def save_upload(corpus_dir: Path, name: str, data: bytes, limit: int = MAX_UPLOAD_BYTES) -> str:
    """Write `data` into the corpus as a new file named after `name` (made safe; `-2`, `-3`...
    added when taken), atomically. Returns its corpus-relative name.

    Raises:
        UploadRefused: bad type, too large, empty, or not a file of that type.
    """
    target = safe_name(name)
    if not data:
        raise UploadRefused(f"{name!r} is empty.")
    if len(data) > limit:
        raise UploadRefused(f"{name!r} is {len(data) / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB.")
    fmt = format_of(target)
    if fmt == "pdf" and not data.startswith(b"%PDF"):
        raise UploadRefused(f"{name!r} is not a PDF file.")
    if fmt == "docx" and not data.startswith(b"PK"):
        raise UploadRefused(f"{name!r} is not a .docx file.")
    if fmt in ("txt", "md", "html") and b"\x00" in data:
        raise UploadRefused(f"{name!r} is not a text file.")
    corpus_dir = Path(corpus_dir)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    stem, suffix = target.rsplit(".", 1)
    tmp = corpus_dir / f".upload-{secrets.token_hex(8)}.tmp"
    tmp.write_bytes(data)
    try:
        n = 1
        while True:
            candidate = target if n == 1 else f"{stem}-{n}.{suffix}"
            try:
                os.link(tmp, corpus_dir / candidate)  # fails if taken: never overwrites
                return candidate
            except FileExistsError:
                n += 1
    finally:
        tmp.unlink(missing_ok=True)


def delete_file(corpus_dir: Path, files, requested: str, resolve: Callable) -> None:
    """Remove one file of the corpus (only a file the listing shows; nothing outside it):
    `resolve(corpus_dir, files, requested)` is the viewer's check (`web.resolve_source`)."""
    path = resolve(corpus_dir, files, requested)
    path.unlink()


def library_rows(corpus_dir: Path, manifest: dict, passages_per_file: dict) -> tuple[list[dict], list[dict]]:
    """(indexed files, other files): name, type, size and, for indexed ones, passages and when
    indexed; for the others why they are not (skipped with its reason, or not indexed yet)."""
    corpus_dir = Path(corpus_dir)
    indexed_at = manifest.get("indexed_at", {})
    skipped = {s: r for s, r in manifest.get("skipped", [])}
    files = manifest.get("files", {})
    rows, others = [], []
    try:
        present = [p.relative_to(corpus_dir).as_posix() for p in list_files(corpus_dir)]
    except Exception:
        present = []
    for name in present:
        path = corpus_dir / name
        try:
            stat = path.stat()
            size = stat.st_size
        except OSError:
            continue
        row = {"name": name, "type": format_of(name) or "", "size": size}
        if name in files:
            changed = hashlib.sha256(path.read_bytes()).hexdigest() != files[name]
            row.update(passages=passages_per_file.get(name, 0),
                       indexed=indexed_at.get(name) or manifest.get("built_at", ""),
                       note="changed since indexed: updating" if changed else "")
            rows.append(row)
        else:
            row["note"] = skipped.get(name, "not indexed yet: updating")
            others.append(row)
    return rows, others


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _when(stamp: str) -> str:
    return stamp[:19].replace("T", " ") + " UTC" if stamp else ""


def library_routes(corpus_dir: Path, get_manifest: Callable[[], dict], get_passages: Callable[[], dict],
                   authorised: Callable, page_parts: dict, on_change: Callable[[], None] = lambda: None,
                   allow_upload: bool = False, limit: int = MAX_UPLOAD_BYTES) -> list:
    """Starlette routes: GET /library, POST /library/upload, GET+POST /library/delete.

    Args:
        get_manifest / get_passages: the live index's manifest and {source: passage count}.
        authorised: `authorised(request)` is False when a login is required and missing.
        page_parts: the web app's `asset(name)`, `headers(nonce)` (its CSP) and
            `resolve(corpus_dir, files, requested)` (its refusal of paths outside the corpus).
        on_change: called after an upload or a delete (start the incremental index now).
        allow_upload: False refuses uploads and deletes (403) and hides their forms and links.
    """
    from starlette.responses import HTMLResponse, RedirectResponse
    from starlette.routing import Route

    _asset, _viewer_headers = page_parts["asset"], page_parts["headers"]

    secret = secrets.token_bytes(32)

    def token(action: str) -> str:
        return hmac.new(secret, action.encode(), "sha256").hexdigest()

    def page(body: str, status: int = 200) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        text = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<meta name='color-scheme' content='light dark'><title>qa: documents</title>"
            f"<style>{_asset('library.css')}</style></head><body>{body}"
            f"<script nonce='{nonce}'>{_asset('library.js')}</script></body></html>"
        )
        headers = _viewer_headers(nonce)
        headers["Content-Security-Policy"] = headers["Content-Security-Policy"].replace(
            "form-action 'none'", "form-action 'self'; connect-src 'self'"
        )
        return HTMLResponse(text, status_code=status, headers=headers)

    def refused(status: int, message: str) -> HTMLResponse:
        return page(f"<main><p class='msg bad'>{html.escape(message)}</p>"
                    "<p><a href='library'>Back to the documents</a></p></main>", status)

    def listing(request):
        if not authorised(request):
            return refused(401, "Log in first: open the chat page and sign in.")
        manifest = get_manifest()
        rows, others = library_rows(corpus_dir, manifest, get_passages())
        said = request.query_params.get("said", "")
        out = ["<header><h1>Documents</h1><nav><a href='./' id='back'>← Back to the chat</a></nav></header><main>"]
        if said:
            out.append(f"<p class='msg' role='status'>{html.escape(said[:300])}</p>")
        total = sum(r["passages"] for r in rows)
        out.append(f"<p>{len(rows)} indexed file{'s' * (len(rows) != 1)}, {total:,} passages.</p>")
        out.append("<table><thead><tr><th>File</th><th>Type</th><th>Size</th><th>Passages</th>"
                   "<th>Last indexed</th><th></th></tr></thead><tbody>")
        for r in rows:
            name = html.escape(r["name"])
            q = quote(r["name"], safe="/")
            note = f"<br><small>{html.escape(r['note'])}</small>" if r["note"] else ""
            out.append(
                f"<tr><td><a href='source?file={q}'>{name}</a>{note}</td><td>{r['type']}</td>"
                f"<td>{_size(r['size'])}</td><td>{r['passages']}</td><td>{_when(r['indexed'])}</td>"
                + (f"<td><a class='del' href='library/delete?file={q}' aria-label='Delete {name}'>Delete</a></td>"
                   if allow_upload else "<td></td>") + "</tr>"
            )
        out.append("</tbody></table>")
        if others:
            out.append("<h2>Not indexed</h2><ul class='skipped'>")
            for r in others:
                q = quote(r["name"], safe="/")
                out.append(f"<li><strong>{html.escape(r['name'])}</strong> ({_size(r['size'])}): "
                           f"{html.escape(r['note'])}"
                           + (f" <a class='del' href='library/delete?file={q}'>Delete</a>" if allow_upload else "")
                           + "</li>")
            out.append("</ul>")
        if allow_upload:
            kinds = ",".join(sorted(FORMATS))
            out.append(
                "<h2>Add documents</h2>"
                "<form id='upload' method='post' action='library/upload' enctype='multipart/form-data'>"
                f"<input type='hidden' name='token' value='{token('upload')}'>"
                "<label id='drop' for='file'>Drop files here, or choose them: "
                f"<input id='file' type='file' name='file' accept='{kinds}' multiple></label>"
                f"<p><small>{', '.join(sorted({s for s in FORMATS if s not in ('.markdown', '.htm')}))}; "
                f"up to {limit / 2**20:.0f} MB each. They are indexed at once.</small></p>"
                "<button type='submit'>Upload</button></form>"
            )
        out.append("</main>")
        return page("".join(out))

    async def upload(request):
        if not authorised(request):
            return refused(401, "Log in first: open the chat page and sign in.")
        if not allow_upload:
            return refused(403, "Uploads are off: start the server with `qa serve --allow-upload`.")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit * 4 + 65536:
            return refused(413, f"Too large: the limit is {limit / 2**20:.0f} MB per file.")
        form = await request.form(max_files=20, max_fields=5, max_part_size=1024 * 1024)
        try:
            if not hmac.compare_digest(str(form.get("token", "")), token("upload")):
                return refused(403, "This form has expired: reload the documents page and try again.")
            saved, errors = [], []
            for item in form.getlist("file"):
                if not hasattr(item, "read"):
                    continue
                data = await item.read(limit + 1)
                try:
                    saved.append(save_upload(corpus_dir, item.filename or "", data, limit))
                except UploadRefused as exc:
                    errors.append(str(exc))
        finally:
            await form.close()
        if not saved and not errors:
            errors.append("No file was chosen.")
        if saved:
            on_change()
        said = (f"Uploaded {', '.join(saved)}: indexing now. " if saved else "") + " ".join(errors)
        if request.headers.get("accept", "").startswith("application/json"):
            from starlette.responses import JSONResponse

            return JSONResponse({"saved": saved, "errors": errors}, status_code=200 if saved else 400)
        return RedirectResponse(f"../library?said={quote(said.strip())}", status_code=303)

    async def delete(request):
        if not authorised(request):
            return refused(401, "Log in first: open the chat page and sign in.")
        if not allow_upload:
            return refused(403, "Changing the corpus is off: start the server with `qa serve --allow-upload`.")
        from ..errors import BadInput

        if request.method == "GET":
            name = request.query_params.get("file", "")
            shown = html.escape(name)
            return page(
                "<header><h1>Delete a document</h1></header><main>"
                f"<p>Delete <strong>{shown}</strong> from the corpus folder? The file itself is removed, "
                "and its passages leave the index.</p>"
                "<form method='post' action='delete'>"
                f"<input type='hidden' name='file' value='{shown}'>"
                f"<input type='hidden' name='token' value='{token('delete')}'>"
                f"<button type='submit' id='confirm'>Delete {shown}</button> "
                "<a href='../library' id='cancel'>Cancel</a></form></main>"
            )
        form = await request.form(max_files=0, max_fields=5)
        name = str(form.get("file", ""))
        if not hmac.compare_digest(str(form.get("token", "")), token("delete")):
            return refused(403, "This form has expired: reload the documents page and try again.")
        listed = {p.relative_to(corpus_dir).as_posix() for p in list_files(Path(corpus_dir))}
        try:
            delete_file(corpus_dir, listed, name, page_parts["resolve"])
        except (BadInput, OSError):
            return refused(404, f"{name!r} is not a file of the corpus.")
        on_change()
        return RedirectResponse(f"../library?said={quote(f'Deleted {name}: updating the index.')}", status_code=303)

    return [
        Route("/library", listing, methods=["GET"]),
        Route("/library/upload", upload, methods=["POST"]),
        Route("/library/delete", delete, methods=["GET", "POST"]),
    ]
