"""Degraded copies of the bundled model, as a broken upgrade would ship them: tests and benchmarks judge the
quality gate and the probe sets with them."""

from pathlib import Path

from rag_core.models.embedder import resolve_model_path


def degraded_model(folder: Path, *, noise: float = 0.0, layers: int | None = None, seed: int = 0) -> str:
    """The bundled MiniLM with Gaussian noise of ``noise`` x each weight matrix's std, and/or only its first
    ``layers`` transformer layers, saved under ``folder``; returns the path to give as ``embedding.model``."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(resolve_model_path("bundled:all-MiniLM-L6-v2"), device="cpu")
    if noise:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for parameter in model.parameters():
                if parameter.dim() > 1:
                    parameter.add_(torch.randn(parameter.shape, generator=generator) * parameter.std() * noise)
    if layers is not None:
        encoder = model[0].auto_model.encoder
        encoder.layer = encoder.layer[:layers]
        model[0].auto_model.config.num_hidden_layers = layers
    model.save(str(folder))
    return str(folder)
