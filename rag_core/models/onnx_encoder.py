"""The configured sentence-transformers model run by ONNX Runtime: the same vectors as torch, at less cost per text.

The transformer is exported once per model fingerprint (its files, torch and the exporter) with
``torch.onnx.export`` and cached under ``embedding.onnx_cache_dir`` (the user's cache folder: one export for every
working folder, made by one process while others wait). Beside it the export keeps the model's tokenizer and what
sentence-transformers would do around the transformer (pooling, normalisation, prompts, truncation), so a process
that finds the export loads neither torch nor sentence-transformers: a command-line query starts in about a second.
An export is accepted only when its vectors match torch's on probe sentences (cosine >= ``PARITY_COSINE``); a cache
entry whose checksum or parity no longer holds is rebuilt, so a stale or corrupt file never serves.

``embedding.precision: int8`` adds a copy with int8 weights, quantised per output channel, activations quantised
per batch (dynamic); embeddings, LayerNorm, softmax and the attention products stay float32. On CPUs with integer
dot-product instructions (VNNI) it encodes about twice as fast (without VNNI its weights keep to 7 bits, which
ONNX Runtime's kernels there need to avoid saturation); its vectors are held to ``INT8_PARITY_COSINE`` of
the float32 export's on the probes (``benchmarks.onnx_backend`` measures it on every SciFact chunk).
"""

import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from rag_core.file_lock import exclusive
from rag_core.models.exported_tokenizer import ExportedTokenizer

log = logging.getLogger(__name__)
PARITY_COSINE = 0.99999
INT8_PARITY_COSINE = 0.97  # measured: 0.98 at the lowest over every SciFact chunk; 7-bit weights a little lower
PROBES = [
    "What does compaction do to deleted rows?",
    "a",
    "Vitamin D deficiency is associated with higher "
    "mortality in elderly patients; the 95% confidence interval was 1.1 to 1.4. " * 8,
]
EXPORT_FORMAT = 3  # bump when what the cache holds changes (2: attention exported eager; 3: tokenizer and settings)
FLOAT32_FILE, INT8_FILE, TOKENIZER_FILE, META_FILE = "model.onnx", "model.int8.onnx", "tokenizer.json", "export.json"
PRECISIONS = ("float32", "int8")


class OnnxUnsupportedError(ValueError):
    """The model's modules are not the transformer + pooling (+ normalise) this backend reproduces."""


@dataclass(frozen=True)
class ExportedModel:
    """What sentence-transformers does around the transformer, read from the loaded model at export time."""

    pooling: str  # mean, cls or max
    normalize: bool  # the model ends in a Normalize module
    max_length: int  # tokens read, special tokens included
    dimension: int
    prompts: dict[str, str]  # the model's own query/document prompts
    tokenizer_name: str  # the Hugging Face tokenizer's name_or_path, length and special tokens: the chunker's
    tokenizer_size: int  # signature is made of them
    special_tokens: int
    pad_id: int

    @classmethod
    def of(cls, model: Any) -> "ExportedModel":  # a SentenceTransformer
        tokenizer = model.tokenizer
        return cls(
            pooling=_pooling_mode(model),
            normalize=any(type(m).__name__ == "Normalize" for m in model),
            max_length=int(model.max_seq_length),
            dimension=int(model.get_embedding_dimension()),
            prompts={k: str(v) for k, v in (model.prompts or {}).items()},
            tokenizer_name=str(tokenizer.name_or_path),
            tokenizer_size=len(tokenizer),
            special_tokens=int(tokenizer.num_special_tokens_to_add(pair=False)),
            pad_id=int(tokenizer.pad_token_id or 0),
        )


def _pooling_mode(model: Any) -> str:  # a SentenceTransformer
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


def _installed(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def model_fingerprint(model_path: str) -> str:
    """What the export depends on: the model's files (names, sizes, times), torch and this format. torch's version
    is read from its package metadata: importing torch costs seconds a query process does not otherwise spend."""
    digest = hashlib.sha256(f"{EXPORT_FORMAT}|{_installed('torch')}|{model_path}".encode())
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
    """Encodes like ``SentenceTransformer.encode`` (prompt prefix, truncation, pooling, optional normalisation).

    ``load_model`` gives the SentenceTransformer; it is called only to export (no usable cache entry yet)."""

    def __init__(
        self,
        model_path: str,
        cache_dir: Path,
        *,
        batch_size: int,
        precision: str = "float32",
        load_model: Callable[[], Any],
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"embedding.precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")
        self.batch_size, self.precision = batch_size, precision
        self.session: Any = None  # an onnxruntime.InferenceSession, once opened
        self.folder = Path(cache_dir) / model_fingerprint(model_path)
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        with exclusive(self.folder.with_name(f"{self.folder.name}.lock")):
            self._open_or_export(load_model)
            if precision == "int8":
                self._open_or_quantize()

    # --- encoding -------------------------------------------------------------------------------------------------

    def encode(self, texts: Sequence[str], *, normalize: bool) -> np.ndarray:
        """At least one text (``Embedder`` answers an empty list itself)."""
        return self._encode_with(self.session, texts, normalize=normalize)

    def _encode_with(self, session: Any, texts: Sequence[str], *, normalize: bool) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths share a batch: less padding
        in_order = np.concatenate(
            [
                self._encode_batch(session, [texts[i] for i in order[start : start + self.batch_size]])
                for start in range(0, len(texts), self.batch_size)
            ]
        )
        vectors = np.empty_like(in_order)
        vectors[order] = in_order
        if normalize or self.model.normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _encode_batch(self, session: Any, texts: list[str]) -> np.ndarray:
        tokens = self.tokenizer.batch(texts, self.model.max_length)
        hidden = session.run(None, {i.name: tokens[i.name] for i in session.get_inputs()})[0]
        mask = tokens["attention_mask"].astype(np.float32)[:, :, None]
        if self.model.pooling == "cls":
            return hidden[:, 0]
        if self.model.pooling == "max":
            return np.where(mask > 0, hidden, -1e9).max(axis=1)
        return (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)

    # --- the cached export ----------------------------------------------------------------------------------------

    def _open_or_export(self, load_model: Callable[[], Any]) -> None:
        """A cached export is trusted when its checksum holds (its folder is named by the model's fingerprint, so
        a changed model never finds it); a fresh export must also reproduce torch's vectors on the probes."""
        if (self.folder / META_FILE).is_file():
            problem = self._open()
            if problem is None:
                return
            log.warning("ONNX export cache %s is unusable (%s): exporting again", self.folder, problem)
        model = load_model()
        self._export(model)
        problem = self._open() or self._parity(model)
        if problem is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise RuntimeError(
                f"The ONNX export of the embedding model does not reproduce torch ({problem}); "
                "set embedding.backend: torch."
            )

    def _meta(self) -> dict[str, Any]:
        return json.loads((self.folder / META_FILE).read_text(encoding="utf-8"))

    def _open(self) -> str | None:
        """None when the cached export is whole and loads; else what is wrong with it. With int8 asked for, the
        float32 file is not read: the int8 copy is checked and opened by itself."""
        try:
            meta = self._meta()
            if meta.get("format") != EXPORT_FORMAT:
                return "format mismatch"
            self.model = ExportedModel(**meta["model"])
            self.tokenizer = ExportedTokenizer(
                self.folder / TOKENIZER_FILE,
                name_or_path=self.model.tokenizer_name,
                size=self.model.tokenizer_size,
                special_tokens=self.model.special_tokens,
                pad_id=self.model.pad_id,
            )
            if self.precision == "float32" or not meta.get("int8_sha256"):
                return self._open_float32()
        except Exception as error:  # noqa: BLE001 - any failure to read or load the files means rebuild them
            return f"{type(error).__name__}: {error}"
        return None

    def _parity(self, model: Any) -> str | None:  # a SentenceTransformer
        got = self.encode(PROBES, normalize=True)
        want = model.encode(PROBES, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        cosine = float(np.min(np.sum(got * want, axis=1)))
        return None if cosine >= PARITY_COSINE else f"probe cosine {cosine:.6f} < {PARITY_COSINE}"

    def _export(self, model: Any) -> None:  # a SentenceTransformer
        import torch

        exported = ExportedModel.of(model)
        tokenizer = model.tokenizer
        transformer = model[0].auto_model.eval()
        # Exported through SDPA, attention's masking becomes Where/IsNaN nodes that took 14 % of ONNX Runtime's time
        # (measured); eager attention exports as MatMul + Softmax, which ONNX Runtime fuses. Same maths: parity
        # on the probes still decides.
        attention = transformer.config._attn_implementation
        transformer.set_attn_implementation("eager")
        sample = tokenizer(["export sample", "a second, longer export sample"], padding=True, return_tensors="pt")
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
                    str(staging / FLOAT32_FILE),
                    input_names=names,
                    output_names=["hidden"],
                    dynamic_axes=axes,
                    opset_version=17,
                    dynamo=False,
                )
            tokenizer.backend_tokenizer.save(str(staging / TOKENIZER_FILE))
            meta = {"sha256": _sha256(staging / FLOAT32_FILE), "format": EXPORT_FORMAT, "model": asdict(exported)}
            (staging / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
            shutil.rmtree(self.folder, ignore_errors=True)
            os.replace(staging, self.folder)  # whole or absent: a crash mid-export leaves no half file behind
        finally:
            transformer.set_attn_implementation(attention)
            shutil.rmtree(staging, ignore_errors=True)
        log.info("Exported the embedding model to ONNX: %s", self.folder)

    # --- the int8 copy --------------------------------------------------------------------------------------------

    def _open_or_quantize(self) -> None:
        problem = self._open_int8()
        if problem is None:
            self.session = self.int8_session
            return
        if self._meta().get("int8_sha256"):
            log.warning("int8 copy in %s is unusable (%s): quantising again", self.folder, problem)
        if self.session is None:  # the float32 file was not opened: the int8 copy was expected
            problem = self._open_float32()
            if problem is not None:
                raise RuntimeError(f"The ONNX export in {self.folder} is unusable ({problem}); delete that folder.")
        self._quantize()
        problem = self._open_int8() or self._int8_parity()
        if problem is not None:
            (self.folder / INT8_FILE).unlink(missing_ok=True)
            raise RuntimeError(
                f"The int8 copy of the embedding model strays from float32 ({problem}); set embedding.precision: "
                "float32."
            )

    def _open_float32(self) -> str | None:
        if self._meta().get("sha256") != _sha256(self.folder / FLOAT32_FILE):
            return "checksum mismatch"
        self.session = _session(self.folder / FLOAT32_FILE)
        return None

    def _open_int8(self) -> str | None:
        try:
            meta = self._meta()
            if meta.get("int8_sha256") != _sha256(self.folder / INT8_FILE):
                return "checksum mismatch"
            if meta.get("int8_reduce_range", False) != _reduce_range():
                return "quantised for another CPU's integer instructions"
            self.int8_session = _session(self.folder / INT8_FILE)
        except Exception as error:  # noqa: BLE001 - any failure to read or load the file means quantise again
            return f"{type(error).__name__}: {error}"
        return None

    def _int8_parity(self) -> str | None:
        want = self._encode_with(self.session, PROBES, normalize=True)
        got = self._encode_with(self.int8_session, PROBES, normalize=True)
        cosine = float(np.min(np.sum(got * want, axis=1)))
        if cosine < INT8_PARITY_COSINE:
            return f"probe cosine {cosine:.4f} < {INT8_PARITY_COSINE}"
        self.session = self.int8_session
        return None

    def _quantize(self) -> None:
        """Weights of every MatMul with a constant weight (the projections and feed-forward layers), int8 per
        output channel; each batch's activations quantised as it runs. Nothing else changes."""
        from onnxruntime.quantization import QuantType, quantize_dynamic

        staging = self.folder / f".{INT8_FILE}.partial"
        root = logging.getLogger()
        was = root.disabled
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            root.disabled = True  # the quantiser's advice, logged at WARNING, to pre-process image models
            try:
                quantize_dynamic(
                    self.folder / FLOAT32_FILE,
                    staging,
                    per_channel=True,
                    reduce_range=_reduce_range(),
                    weight_type=QuantType.QInt8,
                    op_types_to_quantize=["MatMul"],
                    extra_options={"MatMulConstBOnly": True},
                )
            finally:
                root.disabled = was
        os.replace(staging, self.folder / INT8_FILE)
        meta = self._meta() | {"int8_sha256": _sha256(self.folder / INT8_FILE), "int8_reduce_range": _reduce_range()}
        partial = self.folder / f".{META_FILE}.partial"
        partial.write_text(json.dumps(meta), encoding="utf-8")
        os.replace(partial, self.folder / META_FILE)
        log.info("Quantised the embedding model to int8: %s", self.folder / INT8_FILE)


@cache
def _reduce_range() -> bool:
    """Whether int8 weights keep to 7 bits: on x86 CPUs without VNNI, ONNX Runtime multiplies uint8 activations by
    int8 weights in pairs summed into int16, which saturates with full-range weights (ONNX Runtime's quantisation
    guide); 7-bit weights cannot. With VNNI (and on ARM) the products are summed in int32: full range."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True  # unknown: the safe choice
    return not ("avx512_vnni" in flags or "avx_vnni" in flags)


def _session(path: Path) -> Any:  # an onnxruntime.InferenceSession
    import onnxruntime as ort

    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One thread per core this process may run on: ONNX Runtime counts the machine's cores, so a process pinned to
    # one core (taskset, a CPU set) ran two threads on it: a query's p95 was 14 ms against 6 ms with one (measured).
    options.intra_op_num_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    return ort.InferenceSession(str(path), options, providers=providers)
