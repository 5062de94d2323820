"""EMBED (query path): the sentence-transformers model exported to ONNX, run with onnxruntime.

Answering one question must not pay for importing torch (several seconds). At index time (or on
first need) the model's transformer is exported once with `torch.onnx.export`; queries then run it
with `onnxruntime` + `tokenizers` and apply the model's own pooling (read from its
`1_Pooling/config.json`) and L2 normalisation in numpy, so the vectors are those of
sentence-transformers (checked at export: cosine >= PARITY_MIN on probe sentences).

Cache layout, under a folder the caller chooses (the index folder's `.cache/`):

    onnx/<model slug>-<key>/   model.onnx, tokenizer.json, encoder.json
    onnx/hashes.json           sha256 of model files, memoised by (size, mtime) so a cold
                               start does not re-hash 90 MB of weights

`key` hashes the model name, the sha256 of every weight/config/tokenizer file and EXPORT_VERSION:
when the model changes, the key changes and the export is redone. Nothing here imports torch or
sentence_transformers except `export`, which is handed (or loads) the torch model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .. import integrity
from .base import normalize

log = logging.getLogger(__name__)

EXPORT_VERSION = 2  # 2: encoder.json records size and sha256 of model.onnx and tokenizer.json
OPSET = 17
PARITY_MIN = 0.9999
ONNX_DIR = "onnx"
HASHES = "hashes.json"
_SKIP_FILES = {".gitattributes"}
_SKIP_SUFFIXES = (".md",)
_SUPPORTED_POOLING = ("mean", "cls", "max", "mean_sqrt_len_tokens")
PROBES = (
    "Who leads the NCRI?",
    "a",
    "What is the boiling point of water at sea level, in degrees Celsius?",
    "  Leading and trailing spaces, UPPER case and ünïcödé — with punctuation!?  ",
    "A long question. " * 120,  # past max_seq_length: truncation must agree
)


class UnsupportedModel(Exception):
    """This model cannot be run through ONNX here; the message says why (the torch path is used)."""


# --- model identity ----------------------------------------------------------------------------


def _model_files(location: Path) -> list[Path]:
    return sorted(
        p
        for p in location.rglob("*")
        if p.is_file()
        and p.name not in _SKIP_FILES
        and not p.name.endswith(_SKIP_SUFFIXES)
        and not any(part.startswith(".") for part in p.relative_to(location).parts)
    )


def model_key(name: str, location: str | Path, cache_dir: str | Path) -> str:
    """Identity of model `name` stored at `location`: sha256 over its name, the sha256 of each of
    its files, and EXPORT_VERSION. File hashes are memoised in `cache_dir/onnx/hashes.json` by
    (size, mtime), so an unchanged model is not re-read.

    Raises:
        UnsupportedModel: `location` is not a local folder (nothing to hash or export).
    """
    location = Path(location)
    if not location.is_dir():
        raise UnsupportedModel(f"{location} is not a local model folder")
    memo_path = Path(cache_dir) / ONNX_DIR / HASHES
    try:
        memo = json.loads(memo_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    files = {}
    changed = False
    for path in _model_files(location):
        st = path.stat()
        stamp = [st.st_size, st.st_mtime_ns]
        entry = memo.get(str(path))
        if entry is None or entry[:2] != stamp:
            entry = [*stamp, integrity.sha256_file(path)]
            memo[str(path)] = entry
            changed = True
        files[path.relative_to(location).as_posix()] = entry[2]
    if changed:
        _write_json(memo_path, memo)
    blob = json.dumps({"name": name, "files": files, "export": EXPORT_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def export_dir(name: str, key: str, cache_dir: str | Path) -> Path:
    """Folder of the export of model `name` with identity `key`."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip("/"))[-60:] or "model"
    return Path(cache_dir) / ONNX_DIR / f"{slug}-{key}"


def _write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


# --- pooling (numpy; mirrors sentence_transformers' Pooling) -----------------------------------


_LEGACY_POOLING = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def pooling_mode(config: dict) -> str:
    """The single pooling mode of a sentence-transformers `1_Pooling/config.json` (either the
    `pooling_mode` key or the legacy `pooling_mode_*` booleans; none set means mean).

    Raises:
        UnsupportedModel: several modes (concatenated) or one this module does not implement.
    """
    if "pooling_mode" in config:
        modes = config["pooling_mode"]
        modes = [modes] if isinstance(modes, str) else list(modes)
    else:
        modes = [mode for key, mode in _LEGACY_POOLING.items() if config.get(key)] or ["mean"]
    if len(modes) != 1 or modes[0] not in _SUPPORTED_POOLING:
        raise UnsupportedModel(f"pooling {modes} (supported here: one of {_SUPPORTED_POOLING})")
    return modes[0]


def read_model_config(location: str | Path) -> str:
    """Check a sentence-transformers folder's `modules.json` (Transformer, Pooling[, Normalize])
    and return its pooling mode from the Pooling module's `config.json`.

    Raises:
        UnsupportedModel: another module layout, or unsupported pooling.
    """
    location = Path(location)
    try:
        modules = json.loads((location / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnsupportedModel(f"no readable modules.json in {location}") from exc
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Normalize" for k in kinds[2:]):
        raise UnsupportedModel(f"modules {kinds} (exported here: Transformer, Pooling[, Normalize])")
    try:
        config = json.loads((location / modules[1].get("path", "") / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnsupportedModel(f"no readable pooling config in {location}") from exc
    return pooling_mode(config)


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Sentence vectors from token vectors `hidden` (batch, tokens, dim) and attention `mask`."""
    if mode == "cls":
        return hidden[:, 0]
    m = mask[..., None].astype(hidden.dtype)
    if mode == "max":
        return np.where(m > 0, hidden, -1e9).max(axis=1)
    summed = (hidden * m).sum(axis=1)
    counts = np.maximum(m.sum(axis=1), 1e-9)
    return summed / (np.sqrt(counts) if mode == "mean_sqrt_len_tokens" else counts)


# --- the encoder ------------------------------------------------------------------------------


class OnnxEncoder:
    """Runs one exported model: tokenise, ONNX transformer, pooling, L2 normalisation.

    Args:
        folder: an export folder written by `export`.
    """

    def __init__(self, folder: str | Path):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.meta = json.loads((self.folder / "encoder.json").read_text(encoding="utf-8"))
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(int(self.meta["max_length"]))
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = max(1, min(os.cpu_count() or 1, 8))
        # Idle worker threads must sleep, not spin: a spinning pool steals the cores that the
        # search right after the encoding (BLAS, FAISS) needs; measured 10x slower scans.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(self.folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.dim = int(self.meta["dim"])
        self.mode = self.meta["pooling"]

    def _batch(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        width = max(len(e.ids) for e in encodings)
        pad = int(self.meta["pad_id"])
        ids = np.full((len(encodings), width), pad, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n] = e.ids
            mask[row, :n] = 1
            types[row, :n] = e.type_ids
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
        return pool(hidden.astype(np.float32), mask, self.mode)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """L2-normalised float32 vectors of `texts`, shape (len(texts), dim)."""
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            block = order[start : start + batch_size]
            out[block] = self._batch([texts[i] for i in block])
        return normalize(out)


# --- export (needs torch) ---------------------------------------------------------------------


def export(name: str, location: str | Path, st_model, folder: str | Path) -> Path:
    """Export the loaded SentenceTransformer `st_model` (model `name`, files at `location`) to
    `folder`, atomically,
    and check that it reproduces sentence-transformers' vectors on PROBES.

    Raises:
        UnsupportedModel: architecture, tokenizer or pooling this module cannot reproduce, or the
            export does not match (the reason is in the message).
    """
    import torch

    folder = Path(folder)
    mode = read_model_config(location)
    kinds = [type(m).__name__ for m in st_model]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Normalize" for k in kinds[2:]):
        raise UnsupportedModel(f"modules {kinds} (exported here: Transformer, Pooling[, Normalize])")
    transformer = st_model[0]
    hf_model = getattr(transformer, "auto_model", None)
    tokenizer = getattr(transformer, "tokenizer", None)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if hf_model is None or backend is None:
        raise UnsupportedModel("no Hugging Face model with a fast (tokenizers) tokenizer")
    if getattr(tokenizer, "padding_side", "right") != "right":
        raise UnsupportedModel("left-padding tokenizer")
    import inspect

    accepted = inspect.signature(hf_model.forward).parameters
    input_names = ["input_ids", "attention_mask"] + (["token_type_ids"] if "token_type_ids" in accepted else [])

    class _Hidden(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, *args):
            return self.model(**dict(zip(input_names, args))).last_hidden_state

    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        # Trace with padding in the batch so the attention mask is part of the graph.
        ids = torch.tensor([[101, 2054, 2003, 102], [101, 102, 0, 0]], dtype=torch.long)
        mask = (torch.arange(4)[None, :] < torch.tensor([[4], [2]])).long()
        sample = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
        axes = {n: {0: "batch", 1: "tokens"} for n in [*input_names, "last_hidden_state"]}
        was_training = hf_model.training
        hf_model.eval()
        try:
            # The tracer warns about shape checks it freezes; the parity check below is what counts.
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    _Hidden(hf_model),
                    tuple(sample[n] for n in input_names),
                    str(tmp / "model.onnx"),
                    input_names=input_names,
                    output_names=["last_hidden_state"],
                    dynamic_axes=axes,
                    opset_version=OPSET,
                    dynamo=False,
                )
        finally:
            hf_model.train(was_training)
        backend.save(str(tmp / "tokenizer.json"))
        get_dim = getattr(st_model, "get_embedding_dimension", None) or st_model.get_sentence_embedding_dimension
        dim = int(get_dim())
        meta = {
            "model": name,
            "pooling": mode,
            "max_length": int(st_model.max_seq_length),
            "pad_id": int(tokenizer.pad_token_id or 0),
            "dim": dim,
            "inputs": input_names,
            "export_version": EXPORT_VERSION,
            "opset": OPSET,
            "torch": torch.__version__,
        }
        (tmp / "encoder.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        ours = OnnxEncoder(tmp).encode(list(PROBES))
        theirs = st_model.encode(list(PROBES), convert_to_numpy=True, normalize_embeddings=True)
        cosines = (ours * theirs).sum(axis=1)
        if float(cosines.min()) < PARITY_MIN:
            raise UnsupportedModel(f"ONNX vectors differ from sentence-transformers (min cosine {cosines.min():.6f})")
        meta["parity_min_cosine"] = round(float(cosines.min()), 8)
        # What a later load checks the files against (a truncated or overwritten export is
        # exported again rather than handed to onnxruntime).
        meta["files"] = {name: integrity.describe(tmp / name) for name in EXPORT_FILES}
        (tmp / "encoder.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        for path in (*tmp.iterdir(), tmp):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        try:
            os.rename(tmp, folder)
        except OSError:  # another process exported the same key first: use theirs
            if export_problem(folder):
                raise
    except UnsupportedModel:
        raise
    except Exception as exc:  # the exporter raises many types for unsupported operators
        raise UnsupportedModel(f"export failed ({type(exc).__name__}: {str(exc)[:200]})") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune(folder)
    return folder


EXPORT_FILES = ("model.onnx", "tokenizer.json")


def export_problem(folder: Path) -> str | None:
    """What is wrong with an export folder (None: complete, and its files are those recorded in
    its encoder.json: sizes and sample digests, see `integrity.file_problem`)."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "incomplete (no encoder.json)"
    except (OSError, ValueError) as exc:
        return f"damaged (encoder.json unreadable: {exc})"
    files = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(files, dict) or set(files) != set(EXPORT_FILES):
        return "damaged (encoder.json lacks its file records)"
    for name, entry in files.items():
        problem = integrity.file_problem(folder / name, entry if isinstance(entry, dict) else {})
        if problem:
            return f"damaged ({name} {problem})"
    return None


def clean_leftovers(onnx_dir: Path) -> None:
    """Remove temporary export folders whose process is gone (an export killed midway leaves
    ~90 MB behind)."""
    for tmp in Path(onnx_dir).glob(".*.tmp"):
        try:
            pid = int(tmp.name.rsplit(".", 2)[-2])
        except (ValueError, IndexError):
            continue
        if pid == os.getpid() or not _alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)
    for stray in Path(onnx_dir).glob(f".{HASHES}.*"):  # a memo write killed midway
        try:
            if not _alive(int(stray.name.rsplit(".", 1)[-1])):
                stray.unlink(missing_ok=True)
        except ValueError:
            continue


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _prune(keep: Path) -> None:
    """Remove older exports of the same model (same slug, other key)."""
    slug = keep.name.rsplit("-", 1)[0]
    for other in keep.parent.glob(f"{slug}-*"):
        if other != keep and other.is_dir() and other.name.rsplit("-", 1)[0] == slug:
            shutil.rmtree(other, ignore_errors=True)


def load_or_export(
    name: str,
    location: str | Path,
    cache_dir: str | Path,
    st_model: Callable[[], object],
    reuse: str | Path | None = None,
) -> OnnxEncoder:
    """The ONNX encoder of model `name` (files at `location`), exported into `cache_dir` first if
    there is no export for its current identity. `st_model()` returns the loaded
    SentenceTransformer; it is only called when an export is needed. `reuse` is an export folder
    from another cache: copied instead of exporting again when it is of the same identity.

    Raises:
        UnsupportedModel: the model cannot be exported or run this way (message says why).
    """
    try:
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError as exc:
        raise UnsupportedModel(f"{exc.name} is not installed (`pip install onnxruntime tokenizers`)") from exc
    key = model_key(name, location, cache_dir)  # also refuses a non-local model
    folder = export_dir(name, key, cache_dir)
    clean_leftovers(folder.parent)
    problem = export_problem(folder) if folder.exists() else None
    if problem:  # repaired once, here: the next run finds a good export
        log.warning("The ONNX export in %s is %s; exporting it again.", folder, problem)
        shutil.rmtree(folder, ignore_errors=True)
    if not (folder / "encoder.json").exists() and reuse is not None and Path(reuse).name == folder.name:
        if not export_problem(Path(reuse)):
            tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(reuse, tmp)
            try:
                os.rename(tmp, folder)
            except OSError:  # another process put it there first
                shutil.rmtree(tmp, ignore_errors=True)
    if not (folder / "encoder.json").exists():
        log.info("Exporting %s to ONNX in %s (once per model version)", name, folder)
        read_model_config(location)  # refuse an unsupported layout before loading torch
        export(name, location, st_model(), folder)
    try:
        return OnnxEncoder(folder)
    except Exception as exc:  # onnxruntime (InvalidProtobuf...), tokenizers, JSON: damage the checks missed
        log.warning("The ONNX export in %s cannot be loaded (%s: %s); exporting it again.",
                    folder, type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")
        shutil.rmtree(folder, ignore_errors=True)
        export(name, location, st_model(), folder)
        return OnnxEncoder(folder)
