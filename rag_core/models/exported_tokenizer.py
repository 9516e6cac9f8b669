"""The model's fast tokenizer, read from the ONNX export's folder with the ``tokenizers`` library alone.

A query process under the ONNX backend must not import transformers (and with it torch): that import is most of a
command-line query's start-up. The export keeps the model's own ``tokenizers`` definition and the three facts the
chunker reads from a Hugging Face tokenizer, so this answers as that tokenizer does; the export's parity check
(probe texts encoded through this tokenizer against sentence-transformers) and the chunking test hold it to that.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


class ExportedTokenizer:
    """The calls ``TokenChunker`` and ``OnnxEncoder`` make, as a Hugging Face fast tokenizer answers them."""

    def __init__(self, file: Path, *, name_or_path: str, size: int, special_tokens: int, pad_id: int) -> None:
        from tokenizers import Tokenizer

        self._batch = Tokenizer.from_file(str(file))
        self.name_or_path, self._size, self._special_tokens, self._pad_id = name_or_path, size, special_tokens, pad_id
        self._max_length: int | None = None
        self._copies: dict[int | None, Any] = {}

    def __len__(self) -> int:
        return self._size

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        if pair:
            raise ValueError("Pairs are not tokenized here: the encoder reads single texts.")
        return self._special_tokens

    def __call__(
        self,
        text: str | Sequence[str],
        *,
        add_special_tokens: bool = True,
        truncation: bool = False,
        max_length: int | None = None,
        **_: object,
    ) -> dict[str, list]:
        """``input_ids`` and ``offset_mapping`` of one text, or of each of a list, as the Hugging Face tokenizer
        returns them (the chunker asks for offsets without special tokens or truncation)."""
        tokenizer = self._unpadded(max_length if truncation else None)
        texts = [text] if isinstance(text, str) else list(text)
        encodings = tokenizer.encode_batch(texts, add_special_tokens=add_special_tokens)
        ids, offsets = [e.ids for e in encodings], [e.offsets for e in encodings]
        if isinstance(text, str):
            return {"input_ids": ids[0], "offset_mapping": offsets[0]}
        return {"input_ids": ids, "offset_mapping": offsets}

    def _unpadded(self, max_length: int | None) -> Any:  # a tokenizers.Tokenizer
        """A copy that pads nothing and truncates at ``max_length`` (None: never), made on first use: a query
        process only needs ``batch``'s, and the chunker's is one more parse of the tokenizer file."""
        if max_length not in self._copies:
            copy = self._batch.__class__.from_str(self._batch.to_str())
            copy.no_padding()
            if max_length is None:
                copy.no_truncation()
            else:
                copy.enable_truncation(max_length)
            self._copies[max_length] = copy
        return self._copies[max_length]

    def batch(self, texts: Sequence[str], max_length: int) -> dict[str, np.ndarray]:
        """Model inputs for ``texts``: special tokens added, truncated to ``max_length``, padded to the longest."""
        if self._max_length != max_length:
            self._batch.enable_truncation(max_length)
            self._batch.enable_padding(pad_id=self._pad_id)
            self._max_length = max_length
        encodings = self._batch.encode_batch(list(texts))
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
