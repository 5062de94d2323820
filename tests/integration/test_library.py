"""The document library page (issue 15): listing, upload (opt-in, limited, safe names, indexed
at once), delete with confirmation, all behind the login."""

from __future__ import annotations

import re

import httpx
import pytest

from qa.build import build_index
from qa.frontends import server as qserver
from qa.frontends.library import UploadRefused, safe_name, save_upload
from qa.frontends.live import LiveIndex
from qa.retriever import default_retriever

from conftest import FakeEmbedder, patch_embedder


@pytest.fixture
def served(settings, monkeypatch):
    """A server over a live index, uploads allowed: (url, settings, live)."""
    embedder = FakeEmbedder()
    patch_embedder(monkeypatch, embedder)
    (settings.corpus_dir / "scan.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf")
    build_index(settings, embedder=embedder)
    default_retriever(settings, build_if_missing=False)
    servers = []

    def serve(auth=None, allow_upload=True):
        live = LiveIndex(settings, embedder=embedder, interval=0.05, debounce=0.1).start()
        running = qserver.start(qserver.create_app(settings, auth=auth, live=live, allow_upload=allow_upload))
        servers.append((running, live))
        return running.url, live

    yield settings, serve
    for running, live in servers:
        live.stop()
        running.close()


def token(page: str) -> str:
    return re.search(r"name='token' value='([0-9a-f]+)'", page).group(1)


def test_library_lists_files_with_type_size_passages_and_skipped(served):
    settings, serve = served
    url, _ = serve()
    page = httpx.get(url + "library").text
    assert "<h1>Documents</h1>" in page and "2 indexed files" in page
    row = re.search(r"<tr><td><a href='source\?file=garden.txt'>garden.txt</a></td><td>txt</td>"
                    r"<td>([\d.]+ (?:bytes|KB))</td><td>(\d+)</td><td>(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC)</td>", page)
    assert row and int(row.group(2)) == len(default_retriever(settings).passages_of("garden.txt"))
    assert "<strong>scan.pdf</strong>" in page and "damaged or unsupported PDF" in page
    assert "← Back to the chat" in page
    chat = httpx.get(url).text
    assert "library" in chat


def test_upload_is_indexed_at_once_under_a_safe_name(served):
    settings, serve = served
    url, live = serve()
    page = httpx.get(url + "library").text
    builds = live.builds
    text = b"The lighthouse keeper rings the fog bell every ten minutes when the fog comes in.\n"
    response = httpx.post(url + "library/upload", data={"token": token(page)},
                          files={"file": ("../../Fog Rules!.TXT", text, "text/plain")})
    assert response.status_code == 303 and "Uploaded" in httpx.URL(response.headers["location"]).params["said"]
    assert (settings.corpus_dir / "Fog Rules_.txt").read_bytes() == text
    assert not list(settings.corpus_dir.parent.glob("Fog*"))  # no path escaped the corpus
    assert live.wait_idle(builds + 1)
    hit = default_retriever(settings).search("fog bell lighthouse keeper", 1)[0]
    assert hit.source == "Fog Rules_.txt"
    again = httpx.post(url + "library/upload", data={"token": token(page)},
                       files={"file": ("Fog Rules!.txt", b"other", "text/plain")}, headers={"accept": "application/json"})
    assert again.json() == {"saved": ["Fog Rules_-2.txt"], "errors": []}  # never overwrites


def test_upload_refuses_bad_type_forged_form_and_is_off_by_default(served):
    settings, serve = served
    url, _ = serve()
    page = httpx.get(url + "library").text
    bad = httpx.post(url + "library/upload", data={"token": token(page)}, headers={"accept": "application/json"},
                     files={"file": ("run.sh", b"rm -rf /", "text/plain")})
    assert bad.status_code == 400 and ".sh files are not supported" in bad.json()["errors"][0]
    fake_pdf = httpx.post(url + "library/upload", data={"token": token(page)}, headers={"accept": "application/json"},
                          files={"file": ("a.pdf", b"hello", "application/pdf")})
    assert "is not a PDF file" in fake_pdf.json()["errors"][0]
    forged = httpx.post(url + "library/upload", data={"token": "0" * 64}, files={"file": ("a.txt", b"x", "text/plain")})
    assert forged.status_code == 403
    off_url, _ = serve(allow_upload=False)
    off_page = httpx.get(off_url + "library").text
    assert "Add documents" not in off_page and "Delete" not in off_page
    assert httpx.post(off_url + "library/upload", files={"file": ("a.txt", b"x", "text/plain")}).status_code == 403
    assert not (settings.corpus_dir / "a.txt").exists()


def test_size_limit_and_safe_names():
    assert safe_name("C:\\Users\\me\\Résumé final.DOCX") == "Resume final.docx"
    assert safe_name("../../etc/passwd.txt") == "passwd.txt"
    for bad in (".bashrc", "noext", "x.exe", "..."):
        with pytest.raises(UploadRefused):
            safe_name(bad)


def test_save_upload_limit(tmp_path):
    with pytest.raises(UploadRefused, match="limit is"):
        save_upload(tmp_path, "big.txt", b"a" * 2001, limit=2000)
    assert save_upload(tmp_path, "ok.txt", b"a" * 2000, limit=2000) == "ok.txt"
    assert [p.name for p in tmp_path.iterdir()] == ["ok.txt"]  # no temp file left


def test_delete_asks_first_then_removes_and_reindexes(served):
    settings, serve = served
    url, live = serve()
    confirm = httpx.get(url + "library/delete", params={"file": "garden.txt"}).text
    assert "Delete <strong>garden.txt</strong> from the corpus folder?" in confirm and "id='cancel'" in confirm
    assert (settings.corpus_dir / "garden.txt").exists()  # asking deletes nothing
    builds = live.builds
    done = httpx.post(url + "library/delete", data={"file": "garden.txt", "token": token(confirm)})
    assert done.status_code == 303 and not (settings.corpus_dir / "garden.txt").exists()
    assert live.wait_idle(builds + 1)
    assert "garden.txt" not in default_retriever(settings).sources()
    outside = httpx.post(url + "library/delete", data={"file": "../index/CURRENT", "token": token(confirm)})
    assert outside.status_code == 404


def test_library_is_behind_the_login(served):
    settings, serve = served
    url, _ = serve(auth="ann:s3cret")
    assert httpx.get(url + "library").status_code == 401
    assert httpx.post(url + "library/upload", files={"file": ("a.txt", b"x", "text/plain")}).status_code == 401
    assert httpx.post(url + "library/delete", data={"file": "garden.txt"}).status_code == 401
    with httpx.Client() as http:
        assert http.post(url + "login", data={"username": "ann", "password": "s3cret"}).status_code == 200
        assert "garden.txt" in http.get(url + "library").text


def test_last_indexed_is_per_file(settings, fake_embedder):
    from qa.build import read_manifest

    build_index(settings, embedder=fake_embedder)
    first = read_manifest(settings)["indexed_at"]
    (settings.corpus_dir / "garden.txt").write_text("The garden gate is painted blue every spring.\n")
    build_index(settings, embedder=fake_embedder)
    second = read_manifest(settings)["indexed_at"]
    assert second["sub/boats.md"] == first["sub/boats.md"]  # unchanged: kept
    assert second["garden.txt"] > first["garden.txt"]  # changed: now
