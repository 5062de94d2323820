"""The ONNX encoder: pooling as sentence-transformers configures it, model identity and its cache,
fallback to torch, and (real model) the same vectors as sentence-transformers."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa.embedding import onnx as ox
from qa.embedding import SentenceTransformerEmbedder, bundled_model_path


# --- pooling config and pooling -------------------------------------------------------------


def test_pooling_mode_reads_new_and_legacy_configs():
    assert ox.pooling_mode({"pooling_mode": "cls"}) == "cls"
    assert ox.pooling_mode({"pooling_mode": ["max"]}) == "max"
    assert ox.pooling_mode({"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True}) == "mean"
    assert ox.pooling_mode({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}) == "cls"
    assert ox.pooling_mode({"pooling_mode_mean_sqrt_len_tokens": True}) == "mean_sqrt_len_tokens"
    assert ox.pooling_mode({"word_embedding_dimension": 8}) == "mean"  # none set: mean, as ST does


@pytest.mark.parametrize(
    "config",
    [
        {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True},  # concatenated
        {"pooling_mode": "weightedmean"},
        {"pooling_mode": "lasttoken"},
    ],
)
def test_pooling_mode_refuses_what_it_cannot_reproduce(config):
    with pytest.raises(ox.UnsupportedModel, match="pooling"):
        ox.pooling_mode(config)


def test_pool_matches_hand_computed_values():
    hidden = np.array(
        [[[1.0, 2.0], [3.0, 6.0], [100.0, 100.0]], [[-1.0, 0.0], [5.0, -4.0], [1.0, 1.0]]], dtype=np.float32
    )
    mask = np.array([[1, 1, 0], [1, 1, 1]])
    np.testing.assert_allclose(ox.pool(hidden, mask, "mean"), [[2.0, 4.0], [5 / 3, -1.0]], rtol=1e-6)
    np.testing.assert_allclose(ox.pool(hidden, mask, "cls"), [[1.0, 2.0], [-1.0, 0.0]])
    np.testing.assert_allclose(ox.pool(hidden, mask, "max"), [[3.0, 6.0], [5.0, 1.0]])
    np.testing.assert_allclose(
        ox.pool(hidden, mask, "mean_sqrt_len_tokens"), [[4 / np.sqrt(2), 8 / np.sqrt(2)], [5 / np.sqrt(3), -3 / np.sqrt(3)]],
        rtol=1e-6,
    )


# --- model folders and identity -------------------------------------------------------------


def _fake_model(folder: Path, modules=("Transformer", "Pooling", "Normalize"), pooling=None) -> Path:
    folder.mkdir(parents=True)
    paths = {"Transformer": "", "Pooling": "1_Pooling", "Normalize": "2_Normalize", "Dense": "2_Dense"}
    (folder / "modules.json").write_text(
        json.dumps(
            [{"idx": i, "name": str(i), "path": paths[m], "type": f"sentence_transformers.models.{m}"}
             for i, m in enumerate(modules)]
        )
    )
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling or {"pooling_mode_mean_tokens": True}))
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "model.safetensors").write_bytes(b"weights v1")
    (folder / "README.md").write_text("docs do not count")
    return folder


def test_read_model_config_accepts_transformer_pooling_normalize(tmp_path):
    assert ox.read_model_config(_fake_model(tmp_path / "m")) == "mean"
    assert ox.read_model_config(_fake_model(tmp_path / "c", pooling={"pooling_mode": "cls"})) == "cls"


def test_read_model_config_refuses_other_layouts(tmp_path):
    with pytest.raises(ox.UnsupportedModel, match=r"modules \['Transformer', 'Pooling', 'Dense'\]"):
        ox.read_model_config(_fake_model(tmp_path / "m", modules=("Transformer", "Pooling", "Dense")))


def test_model_key_changes_with_any_weight_or_config_file_but_not_docs(tmp_path):
    model, cache = _fake_model(tmp_path / "m"), tmp_path / "cache"
    key = ox.model_key("m", model, cache)
    assert ox.model_key("m", model, cache) == key
    (model / "README.md").write_text("edited docs")
    assert ox.model_key("m", model, cache) == key
    assert ox.model_key("other-name", model, cache) != key
    (model / "model.safetensors").write_bytes(b"weights v2")
    key2 = ox.model_key("m", model, cache)
    assert key2 != key
    (model / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "cls"}))
    assert ox.model_key("m", model, cache) not in (key, key2)


def test_model_key_memoises_hashes_by_size_and_mtime(tmp_path):
    model, cache = _fake_model(tmp_path / "m"), tmp_path / "cache"
    ox.model_key("m", model, cache)
    memo = json.loads((cache / "onnx" / "hashes.json").read_text())
    entry = memo[str(model / "model.safetensors")]
    assert entry[:2] == [10, (model / "model.safetensors").stat().st_mtime_ns]
    assert entry[2] == hashlib.sha256(b"weights v1").hexdigest()


def test_model_key_refuses_a_hub_name(tmp_path):
    with pytest.raises(ox.UnsupportedModel, match="not a local model folder"):
        ox.model_key("org/some-model", "org/some-model", tmp_path)


def test_unexportable_model_falls_back_to_torch_with_the_reason_logged(tmp_path, caplog):
    model = _fake_model(tmp_path / "m", modules=("Transformer", "Pooling", "Dense"))
    embedder = SentenceTransformerEmbedder(str(model), cache_dir=tmp_path / "cache")
    with caplog.at_level(logging.WARNING, logger="qa.embedding"):
        assert embedder.query_encoder() is None
        assert embedder.query_encoder() is None  # decided once
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        f"Texts for {model} are embedded with torch, not ONNX: "
        "modules ['Transformer', 'Pooling', 'Dense'] (exported here: Transformer, Pooling[, Normalize])"
    ]
    assert embedder._model is None  # the refusal did not load torch


def test_no_cache_folder_means_no_onnx():
    assert SentenceTransformerEmbedder("whatever").query_encoder() is None


# --- the real model -------------------------------------------------------------------------

QUESTIONS = [
    "Who leads the NCRI?",
    "who leads the ncri",
    "What does the PMOI stand for, and when was it founded?",
    "Iran",
    "Wer führt den Nationalen Widerstandsrat? ¿Quién lidera?",
    "  extra   spaces\tand tabs  ",
    "1990 Geneva assassination",
    "Is 0.1% of 2,000,000 equal to 2000? (yes/no)",
    "A very long question that goes on. " * 60,  # truncated at max_seq_length on both paths
]


@pytest.fixture(scope="module")
def onnx_export(tmp_path_factory, real_embedder):
    """The bundled model exported once into a fresh cache (the real export, with its checks)."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    calls = []

    def model():
        calls.append(1)
        return real_embedder.model

    encoder = ox.load_or_export(real_embedder.name, bundled_model_path(), cache, model)
    return encoder, cache, calls


@pytest.mark.model
def test_onnx_query_vectors_match_sentence_transformers(onnx_export, real_embedder):
    encoder, _, _ = onnx_export
    ours = encoder.encode(QUESTIONS)
    theirs = real_embedder.model.encode(QUESTIONS, convert_to_numpy=True, normalize_embeddings=True)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() >= 0.9999, cosines
    assert ours.shape == (len(QUESTIONS), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)
    # One at a time (no padding in the batch) gives the same vectors as batched.
    single = np.stack([encoder.encode([q])[0] for q in QUESTIONS])
    np.testing.assert_allclose(single, ours, atol=1e-5)


@pytest.mark.model
def test_export_is_kept_and_reused_while_the_model_is_unchanged(onnx_export, real_embedder):
    encoder, cache, calls = onnx_export
    meta = json.loads((encoder.folder / "encoder.json").read_text())
    assert (meta["model"], meta["pooling"], meta["max_length"], meta["dim"]) == ("all-MiniLM-L6-v2", "mean", 256, 384)
    assert meta["parity_min_cosine"] >= 0.9999
    again = ox.load_or_export(real_embedder.name, bundled_model_path(), cache, lambda: pytest.fail("re-exported"))
    assert again.folder == encoder.folder and calls == [1]


@pytest.mark.model
def test_export_is_redone_when_the_model_changes(tmp_path, real_embedder, onnx_export):
    source = Path(bundled_model_path())
    model = tmp_path / "model"
    shutil.copytree(source, model, ignore=shutil.ignore_patterns("model.safetensors"))
    (model / "model.safetensors").symlink_to(source / "model.safetensors")
    cache = tmp_path / "cache"
    loads = []

    def st_model():
        loads.append(1)
        return real_embedder.model

    first = ox.load_or_export("copy", model, cache, st_model)
    config = json.loads((model / "config.json").read_text())
    config["note"] = "changed"
    (model / "config.json").write_text(json.dumps(config))
    second = ox.load_or_export("copy", model, cache, st_model)
    assert loads == [1, 1]
    assert second.folder != first.folder and not first.folder.exists()  # the old export is pruned
    assert sorted(p.name for p in (cache / "onnx").iterdir()) == sorted([second.folder.name, "hashes.json"])


@pytest.mark.model
def test_embedder_uses_onnx_for_queries_and_copies_the_export_to_another_index(tmp_path, onnx_export, real_embedder):
    _, cache, _ = onnx_export
    embedder = SentenceTransformerEmbedder(real_embedder.name, cache_dir=cache)
    vectors = embedder.encode_queries(["Who leads the NCRI?"])
    assert embedder._model is None  # no torch model was loaded for it
    expected = real_embedder.model.encode(["Who leads the NCRI?"], normalize_embeddings=True)
    assert float(vectors[0] @ expected[0]) >= 0.9999
    embedder.use_cache_dir(tmp_path / "other-index" / ".cache")
    assert embedder._query.folder.parent == tmp_path / "other-index" / ".cache" / "onnx"
    assert (embedder._query.folder / "model.onnx").stat().st_size > 1_000_000
    assert embedder._model is None
