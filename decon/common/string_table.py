"""Many strings in two numpy arrays (UTF-8 blob + offsets): compact, fork-shareable, savable as .npy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class StringTable:
    """An immutable list of ``str | None`` stored as one UTF-8 byte blob."""

    __slots__ = ("blob", "offsets", "present")

    def __init__(self, blob: np.ndarray, offsets: np.ndarray, present: np.ndarray) -> None:
        self.blob = blob
        self.offsets = offsets
        self.present = present

    @classmethod
    def from_list(cls, items: Sequence[str | None]) -> StringTable:
        encoded = [(s or "").encode("utf-8") for s in items]
        lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=len(encoded))
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        blob = np.frombuffer(b"".join(encoded), dtype=np.uint8) if encoded else np.empty(0, np.uint8)
        present = np.fromiter((s is not None for s in items), dtype=bool, count=len(items))
        return cls(blob.copy(), offsets, present)

    def __len__(self) -> int:
        return len(self.present)

    def __getitem__(self, i: int) -> str | None:
        if not self.present[i]:
            return None
        return self.blob[self.offsets[i]:self.offsets[i + 1]].tobytes().decode("utf-8")

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.blob": self.blob, f"{prefix}.offsets": self.offsets, f"{prefix}.present": self.present}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> StringTable:
        return cls(arrays[f"{prefix}.blob"], arrays[f"{prefix}.offsets"], arrays[f"{prefix}.present"])
