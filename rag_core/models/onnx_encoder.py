"""The configured sentence-transformers model run by ONNX Runtime: the same vectors as torch, at less cost per text.

The transformer is exported once per model fingerprint (its files, torch and the exporter) with
``torch.onnx.export`` and cached under ``embedding.onnx_cache_dir`` (the user's cache folder: one export for every
working folder, made by one process while others wait); pooling and normalisation, a few lines of numpy, are done
here from the model's own Pooling settings, and texts go through the model's own tokenizer. An
export is accepted only when its vectors match torch's on probe sentences (cosine >= ``PARITY_COSINE``); a cache
entry whose checksum or parity no longer holds is rebuilt, so a stale or corrupt file never serves.
"""

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag_core.file_lock import exclusive

log = logging.getLogger(__name__)
PARITY_COSINE = 0.99999
PROBES = [
    "What does compaction do to deleted rows?",
    "a",
    "Vitamin D deficiency is associated with higher "
    "mortality in elderly patients; the 95% confidence interval was 1.1 to 1.4. " * 8,
]
EXPORT_FORMAT = 2  # bump when what the cache holds changes (2: attention exported eager)


class OnnxUnsupportedError(ValueError):
    """The model's modules are not the transformer + pooling (+ normalise) this backend reproduces."""


def _pooling_mode(model) -> str:  # noqa: ANN001 - a SentenceTransformer
    modules = [type(m).__name__ for m in model]
    if modules[:2] != ["Transformer", "Pooling"] or any(m != "Normalize" for m in modules[2:]):
        raise OnnxUnsupportedError(
            f"ONNX backend supports Transformer + Pooling (+ Normalize) models; this one is "
            f"{' + '.join(modules)}. Set embedding.backend: torch."
        )
    pooling = model[1]
    if getattr(pooling, "include_prompt", True) is False:
        raise OnnxUnsupportedError("the model's pooling excludes prompt tokens; set embedding.backend: torch.")
    mode = getattr(pooling, "pooling_mode", None) or next(
        (name for name in ("mean", "cls", "max") if getattr(pooling, f"pooling_mode_{name}_tokens", False)), None
    )
    if mode not in ("mean", "cls", "max"):
        raise OnnxUnsupportedError(
            f"pooling {mode!r} is not reproduced by the ONNX backend; set embedding.backend: torch."
        )
    return mode


def model_fingerprint(model_path: str) -> str:
    """What the export depends on: the model's files (names, sizes, times), torch and this format."""
    import torch

    digest = hashlib.sha256(f"{EXPORT_FORMAT}|{torch.__version__}|{model_path}".encode())
    root = Path(model_path)
    if root.is_dir():
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            stat = file.stat()
            digest.update(f"{file.relative_to(root)}|{stat.st_size}|{int(stat.st_mtime)}".encode())
    return digest.hexdigest()[:16]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class OnnxEncoder:
    """Encodes like ``SentenceTransformer.encode`` (prompt prefix, truncation, pooling, optional normalisation)."""

    def __init__(self, model, model_path: str, cache_dir: Path, *, batch_size: int) -> None:  # noqa: ANN001
        self.pooling = _pooling_mode(model)
        self.tokenizer = model.tokenizer
        self.max_length = int(model.max_seq_length)
        self.normalize_module = any(type(m).__name__ == "Normalize" for m in model)
        self.batch_size = batch_size
        self.folder = Path(cache_dir) / model_fingerprint(model_path)
        self.session = self._load_or_export(model)

    # --- encoding -------------------------------------------------------------------------------------------------

    def encode(self, texts: Sequence[str], *, normalize: bool) -> np.ndarray:
        """At least one text (``Embedder`` answers an empty list itself)."""
        order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths share a batch: less padding
        in_order = np.concatenate(
            [
                self._encode_batch([texts[i] for i in order[start : start + self.batch_size]])
                for start in range(0, len(texts), self.batch_size)
            ]
        )
        vectors = np.empty_like(in_order)
        vectors[order] = in_order
        if normalize or self.normalize_module:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="np")
        feeds = {
            i.name: tokens[i.name].astype(np.int64)
            if i.name in tokens
            else np.zeros_like(tokens["input_ids"], dtype=np.int64)
            for i in self.session.get_inputs()
        }
        hidden = self.session.run(None, feeds)[0]
        mask = tokens["attention_mask"].astype(np.float32)[:, :, None]
        if self.pooling == "cls":
            return hidden[:, 0]
        if self.pooling == "max":
            return np.where(mask > 0, hidden, -1e9).max(axis=1)
        return (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)

    # --- the cached export ----------------------------------------------------------------------------------------

    def _load_or_export(self, model):  # noqa: ANN001, ANN202 - SentenceTransformer -> InferenceSession
        """A cached export is trusted when its checksum holds (its folder is named by the model's fingerprint, so
        a changed model never finds it); a fresh export must also reproduce torch's vectors on the probes."""
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        with exclusive(self.folder.with_name(f"{self.folder.name}.lock")):
            return self._load_or_export_alone(model)

    def _load_or_export_alone(self, model):  # noqa: ANN001, ANN202 - SentenceTransformer -> InferenceSession
        onnx_file, meta_file = self.folder / "model.onnx", self.folder / "export.json"
        if onnx_file.is_file() and meta_file.is_file():
            problem = self._open(onnx_file, meta_file)
            if problem is None:
                return self.session
            log.warning("ONNX export cache %s is unusable (%s): exporting again", self.folder, problem)
        self._export(model)
        problem = self._open(onnx_file, meta_file) or self._parity(model)
        if problem is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise RuntimeError(
                f"The ONNX export of the embedding model does not reproduce torch ({problem}); "
                "set embedding.backend: torch."
            )
        return self.session

    def _open(self, onnx_file: Path, meta_file: Path) -> str | None:
        """None when the cached export is whole and loads; else what is wrong with it."""
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            if meta.get("sha256") != _sha256(onnx_file) or meta.get("format") != EXPORT_FORMAT:
                return "checksum or format mismatch"
            self.session = _session(onnx_file)
        except Exception as error:  # noqa: BLE001 - any failure to read or load the file means rebuild it
            return f"{type(error).__name__}: {error}"
        return None

    def _parity(self, model) -> str | None:  # noqa: ANN001
        got = self.encode(PROBES, normalize=True)
        want = model.encode(PROBES, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        cosine = float(np.min(np.sum(got * want, axis=1)))
        return None if cosine >= PARITY_COSINE else f"probe cosine {cosine:.6f} < {PARITY_COSINE}"

    def _export(self, model) -> None:  # noqa: ANN001
        import torch

        transformer = model[0].auto_model.eval()
        # Exported through SDPA, attention's masking becomes Where/IsNaN nodes that took 14 % of ONNX Runtime's time
        # (measured); eager attention exports as MatMul + Softmax, which ONNX Runtime fuses. Same maths: parity
        # on the probes still decides.
        attention = transformer.config._attn_implementation
        transformer.set_attn_implementation("eager")
        sample = self.tokenizer(["export sample", "a second, longer export sample"], padding=True, return_tensors="pt")
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

        class Hidden(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.transformer = transformer

            def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
                return self.transformer(**dict(zip(names, inputs, strict=True))).last_hidden_state

        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=self.folder.parent))
        try:
            axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"hidden": {0: "batch", 1: "tokens"}}
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer notes on constant shapes: parity on the probes decides
                torch.onnx.export(
                    Hidden().to("cpu"),
                    tuple(sample[n].to("cpu") for n in names),
                    str(staging / "model.onnx"),
                    input_names=names,
                    output_names=["hidden"],
                    dynamic_axes=axes,
                    opset_version=17,
                    dynamo=False,
                )
            (staging / "export.json").write_text(
                json.dumps({"sha256": _sha256(staging / "model.onnx"), "format": EXPORT_FORMAT}), encoding="utf-8"
            )
            shutil.rmtree(self.folder, ignore_errors=True)
            os.replace(staging, self.folder)  # whole or absent: a crash mid-export leaves no half file behind
        finally:
            transformer.set_attn_implementation(attention)
            shutil.rmtree(staging, ignore_errors=True)
        log.info("Exported the embedding model to ONNX: %s", self.folder)


def _session(path: Path):  # noqa: ANN202 - onnxruntime.InferenceSession
    import onnxruntime as ort

    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One thread per core this process may run on: ONNX Runtime counts the machine's cores, so a process pinned to
    # one core (taskset, a CPU set) ran two threads on it: a query's p95 was 14 ms against 6 ms with one (measured).
    options.intra_op_num_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    return ort.InferenceSession(str(path), options, providers=providers)
