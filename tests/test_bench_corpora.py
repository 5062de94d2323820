"""The benchmark-collection tooling (bench/corpora) on a tiny made-up collection: no Debian files."""

import json

from bench.corpora import check
from bench.corpora.install import MANIFEST, materialise
from bench.corpora.registry import Collection, select_files

PAGE_A = """<html><head><title>Ignored title words</title></head><body>
<h1>Backups</h1>
<p>Run the nightly dump with   <b>pg_dump</b> before you upgrade the server.</p>
<p>Hidden <script>secret script words here</script> text.</p>
</body></html>
"""
PAGE_B = """<html><body><h1>Restores</h1>
<p>Restore the nightly dump with pg_restore into an empty database.</p>
<p>Restore the nightly dump with pg_restore into an empty database.</p>
</body></html>
"""
TOC = '<html><body><div class="toc"><a href="b.html">B</a></div><a href="other.html">x</a></body></html>'


def make_source(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.html").write_text(PAGE_A, encoding="utf-8")
    (src / "b.html").write_text(PAGE_B, encoding="utf-8")
    (src / "toc.html").write_text(TOC, encoding="utf-8")
    (src / "other.html").write_text("<p>not chosen</p>", encoding="utf-8")
    (src / "sub" / "c.html").write_text("<p>left out by the exclude glob</p>", encoding="utf-8")
    return src


def test_select_files_uses_include_exclude_and_toc(tmp_path):
    src = make_source(tmp_path)
    coll = Collection("tiny", "pkg", src, "d", include=("a.html", "sub/*.html"), exclude=("sub/*",), toc_pages=("toc.html",))
    assert select_files(coll) == ["a.html", "b.html", "toc.html"]
    assert select_files(coll, tmp_path / "nowhere") == []


def test_materialise_copies_keeps_paths_and_is_idempotent(tmp_path):
    src = make_source(tmp_path)
    coll = Collection("tiny", "pkg", src, "d", include=("*.html", "sub/*.html"))
    folder, rebuilt = materialise(coll, tmp_path / "dest")
    assert rebuilt and folder == tmp_path / "dest" / "tiny"
    assert (folder / "sub" / "c.html").read_text(encoding="utf-8") == "<p>left out by the exclude glob</p>"
    assert not (folder / "a.html").is_symlink()
    assert json.loads((folder / MANIFEST).read_text())["files"] == 5
    assert materialise(coll, tmp_path / "dest") == (folder, False)
    (src / "new.html").write_text("<p>new</p>", encoding="utf-8")
    assert materialise(coll, tmp_path / "dest") == (folder, True)
    assert (folder / "new.html").is_file() and not (tmp_path / "dest" / ".tiny.tmp").exists()


def haystack(tmp_path):
    src = make_source(tmp_path)
    return check.Haystack(check.render(src))


def row(**kw):
    base = {"_line": "dev.jsonl:1", "id": "tiny-d001", "question": "how do I back up?", "kind": "howto"}
    return {**base, **kw}


def test_evidence_found_once_with_spacing_and_case_normalised(tmp_path):
    hay = haystack(tmp_path)
    good = row(evidence="run the nightly dump with PG_DUMP before")
    assert check.check_row(good, "tiny", "dev", hay) == []
    assert hay.places(good["evidence"]) == [("a.html", 1)]


def test_evidence_problems_are_named(tmp_path):
    hay = haystack(tmp_path)
    twice = check.check_row(row(evidence="restore the nightly dump with pg_restore"), "tiny", "dev", hay)
    assert len(twice) == 1 and "occurs 2 times (b.html x2)" in twice[0]
    hidden = check.check_row(row(evidence="secret script words here"), "tiny", "dev", hay)
    assert len(hidden) == 1 and "does not occur" in hidden[0]
    short = check.check_row(row(evidence="run the nightly"), "tiny", "dev", hay)
    assert len(short) == 1 and "3 words" in short[0]
    assert "null" in check.check_row(row(kind="unanswerable-ontopic", evidence="run the nightly dump with"), "tiny", "dev", hay)[0]
    assert "needs an evidence" in check.check_row(row(evidence=None), "tiny", "dev", hay)[0]
    assert "id must look like tiny-t001" in check.check_row(row(evidence="run the nightly dump with"), "tiny", "test", hay)[0]
    assert "not one of" in check.check_row(row(kind="trivia", evidence="run the nightly dump with"), "tiny", "dev", hay)[0]


def test_absent_terms_are_proved_absent(tmp_path):
    hay = haystack(tmp_path)
    ok = row(kind="unanswerable-ontopic", evidence=None, absent=["barman", "dump file"])
    assert check.check_row(ok, "tiny", "dev", hay) == []
    bad = check.check_row(row(kind="unanswerable-ontopic", evidence=None, absent=["PG_RESTORE"]), "tiny", "dev", hay)
    assert len(bad) == 1 and "occurs in b.html" in bad[0]
    # whole words only: "dump" is there, "dum" is not
    assert check.check_row(row(kind="unanswerable-ontopic", evidence=None, absent=["dum"]), "tiny", "dev", hay) == []


def test_check_collection_reports_counts_and_collection_rules(tmp_path):
    src = make_source(tmp_path)
    qdir = tmp_path / "questions"
    qdir.mkdir()
    dev = [
        {"id": "tiny-d001", "question": "backup before upgrade?", "evidence": "with pg_dump before you upgrade", "kind": "why"},
        {"id": "tiny-d001", "question": "what is kubernetes", "evidence": None, "kind": "unanswerable-ontopic"},
        "not json",
    ]
    test = [{"id": "tiny-t001", "question": "restore into what", "evidence": "into an empty database", "kind": "factual"}]
    (qdir / "dev.jsonl").write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in dev) + "\n")
    (qdir / "test.jsonl").write_text(json.dumps(test[0]) + "\n")
    report = check.check_collection("tiny", src, qdir)
    problems = "\n".join(report.problems)
    assert "dev.jsonl:3: not valid JSON" in problems
    assert "id 'tiny-d001' is used 2 times" in problems
    assert "occurs 2 times" in problems  # "into an empty database" is in b.html twice
    assert "2 answerable questions, at least 60 wanted" in problems
    assert "no question of kind paraphrase, keyword, howto, typo, unanswerable-offtopic" in problems
    assert report.counts()["dev"] == {"why": 1, "unanswerable-ontopic": 1}
    assert "dev    2 questions (1 answerable, 1 unanswerable): why=1 unanswerable-ontopic=1" in check.format_counts(report)


def test_main_exits_2_when_the_corpus_folder_is_missing(tmp_path, capsys, monkeypatch):
    from bench.corpora import registry

    qdir = tmp_path / "q" / "python311"
    qdir.mkdir(parents=True)
    (qdir / "dev.jsonl").write_text("")
    monkeypatch.setattr(registry, "HERE", tmp_path / "q")
    assert check.main(["--dest", str(tmp_path / "none"), "--only", "python311"]) == 2
    assert "run `python -m bench.corpora.install` first" in capsys.readouterr().err


def test_evidence_across_a_section_heading_is_noted_not_failed(tmp_path):
    src = make_source(tmp_path)
    hay = check.Haystack(check.render(src), src)
    # once in b.html's text, but the heading and the body are never one passage
    assert hay.places("restores restore the nightly dump") == [("b.html", 1)]
    assert not hay.in_one_passage("restores restore the nightly dump")
    assert hay.in_one_passage("with pg_restore into an empty")
    qdir = tmp_path / "q"
    qdir.mkdir()
    row = {"id": "tiny-d001", "question": "restore?", "evidence": "restores restore the nightly dump", "kind": "howto"}
    (qdir / "dev.jsonl").write_text(json.dumps(row) + "\n")
    report = check.check_collection("tiny", src, qdir)
    assert report.notes == ["dev.jsonl:1: evidence 'restores restore the nightly dump' spans two passages of the default chunking"]
    assert not any("restores restore" in p for p in report.problems)


def test_without_apt_the_message_names_the_packages_and_the_next_step(monkeypatch):
    import pytest

    from bench.corpora import install

    monkeypatch.setattr(install.shutil, "which", lambda name: None)
    assert install.missing_packages(["sqlite3-doc"]) == ["sqlite3-doc"]
    with pytest.raises(install.InstallError) as exc:
        install.apt_install(["sqlite3-doc", "python3.11-doc"])
    message = str(exc.value)
    assert "apt-get is not available to install sqlite3-doc, python3.11-doc" in message
    assert "sudo apt-get install sqlite3-doc python3.11-doc" in message and "--no-apt" in message
