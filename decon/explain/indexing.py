"""Why an eval instance is not in the index: its records through the index build's own filters."""

from __future__ import annotations

from typing import Any

import numpy as np

from decon.common.config import DetectionConfig
from decon.common.file_io import find_data_files
from decon.detect.reference_index import _EMPTY_I64, _parse_all, _Parsed, _Texts


def not_indexed_reasons(config: DetectionConfig, tok: Any, eval_key: str, instance: int) -> list[dict[str, Any]]:
    """Per record of (``eval_key``, ``instance``) in the reference files: the filter that dropped it
    (``gate``, ``value``, ``bound``); empty when the reference set has no such record."""
    files = find_data_files(config.resolved_evals_dir(), columnar=True)
    raw = [r for r in _parse_all(files, config, False)
           if r[2].get("eval_key") == eval_key and r[2].get("eval_instance_index") == instance]
    if not raw:
        return []
    parsed = _Parsed.of(raw, config)
    texts = {name: _Texts.build(per_rec, tok, 1) for name, per_rec in parsed.inputs().items()}
    if config.tokenizer_str == "word":
        counts = np.array([len(parsed.words(k)) for k in range(len(raw))], dtype=np.int64)
    else:
        space = np.fromiter(tok.space_token_ids, dtype=np.int64) if tok.space_token_ids else _EMPTY_I64
        counts = np.zeros(len(raw), dtype=np.int64)
        for t in texts.values():
            counts += t.per_record(t.nonspace_counts(space))
    out = []
    for k, (file_idx, line_num, rec) in enumerate(raw):
        where = {"file": files[file_idx].name, "line": line_num, "doc_id": rec.get("doc_id")}
        unique = len(set(parsed.words(k)))
        if config.eval_min_token_length > 0 and counts[k] < config.eval_min_token_length:
            out.append({**where, "gate": "eval_min_token_length", "value": int(counts[k]),
                        "bound": config.eval_min_token_length,
                        "detail": "question, answer and passage tokens (spaces not counted)"})
        elif config.eval_min_unique_word_count > 0 and unique < config.eval_min_unique_word_count:
            out.append({**where, "gate": "eval_min_unique_word_count", "value": unique,
                        "bound": config.eval_min_unique_word_count, "detail": "distinct words"})
        elif not parsed.q_in[k]:
            out.append({**where, "gate": "question", "value": None, "bound": None,
                        "detail": "no question text after cleaning"})
        else:
            out.append({**where, "gate": "eval_dedup", "value": None, "bound": None,
                        "detail": "the same text as a record indexed under another instance (eval_dedup)"})
    return out
