"""Turning one dataset example into reference records, as declared by an ``evals.yaml`` entry.

An entry names where the question (``prompt``/``prompts``), the optional ``passage`` and the
answers (``answers``/``answer``) live in an example.  Answer declarations may expand one example
into several records (one per multiple-choice option, one per item of parallel arrays, ...).
The resulting records, field order and fingerprints follow the reference format that detect
reads (see ``docs/review.md``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

# Keys of an "expansion" (what one declared answer contributes to a record)
OVERRIDE_PROMPT = "override_prompt"
OVERRIDE_ANSWER = "override_answer"
ANSWER_CONFIG = "answer_config"
SUB_INDEX = "sub_index"
IS_CORRECT = "is_correct"

Expansion = dict[str, Any]


def get_nested_field(obj: Any, path: str | None) -> Any:
    """Follow a dotted path: names index mappings, all-digit parts index lists.

    Returns None as soon as a step does not exist.
    """
    if not path:
        return None
    value = obj
    for part in path.split("."):
        if part.isdigit():
            pos = int(part)
            if isinstance(value, list | tuple) and 0 <= pos < len(value):
                value = value[pos]
            else:
                return None
        elif isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            return None
    return value


def is_meaningful_answer(value: Any) -> bool:
    """False for None, blank strings and mappings whose values are all empty."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, Mapping):
        return any(value.values())
    return True


def _key_to_position(key: Any) -> int | None:
    """A single letter means A=0, B=1, ...; anything int-like is used as is."""
    if isinstance(key, str) and len(key) == 1 and key.isalpha():
        return ord(key.upper()) - ord("A")
    try:
        return int(key)
    except (TypeError, ValueError):
        return None


def _pick_from_list(values: Any, key: Any) -> Any:
    if not isinstance(values, list):
        return None
    pos = _key_to_position(key)
    if pos is None or not 0 <= pos < len(values):
        return None
    return values[pos]


def _numbers_to_letters(key: Any, below_one: str | None) -> Any:
    """1 -> "A", 2 -> "B", ...; values below 1 become ``below_one`` (or stay as they are)."""
    try:
        number = int(key)
    except (TypeError, ValueError):
        return key
    if number >= 1:
        return chr(ord("A") + number - 1)
    return below_one if below_one is not None else key


def _transform_suffix(value: Any, transform: str) -> Any:
    """Label transforms for ``expand_prefix``; values that are not integers pass through."""
    if transform == "numbers_to_letters":
        return _numbers_to_letters(value, None)
    try:
        number = int(value)
    except (TypeError, ValueError):
        return value
    if transform == "add_one":
        return str(number + 1)
    if transform == "index_to_letter":
        try:
            return chr(ord("a") + number)
        except (ValueError, OverflowError):
            return value
    if transform == "binary_to_bool":
        return "true" if number == 1 else "false"
    return value


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _parallel_arrays(entry: Mapping[str, Any], example: Mapping[str, Any]) -> list[Expansion] | None:
    """One expansion per item of the ``prompts: {array: ...}`` list, paired with an answer array."""
    prompts = entry.get("prompts", entry.get("prompt"))
    if not (isinstance(prompts, Mapping) and "array" in prompts):
        return None
    questions = get_nested_field(example, prompts["array"])
    answers_cfg = entry.get("answers", entry.get("answer"))
    answers = None
    if isinstance(answers_cfg, list):
        for item in answers_cfg:
            if isinstance(item, Mapping) and "array" in item:
                answers = get_nested_field(example, item["array"])
                break
    elif isinstance(answers_cfg, Mapping) and "array" in answers_cfg:
        answers = get_nested_field(example, answers_cfg["array"])
    if not questions:
        return None
    questions = _as_list(questions)
    if answers:
        answers = _as_list(answers)
    out: list[Expansion] = []
    for pos, question in enumerate(questions):
        if not question or (isinstance(question, str) and not question.strip()):
            continue
        answer = str(answers[pos]) if answers and pos < len(answers) else None
        out.append({SUB_INDEX: pos, OVERRIDE_PROMPT: str(question), OVERRIDE_ANSWER: answer})
    return out or [{}]


def _simple_field(example: Mapping[str, Any], path: str) -> list[Expansion]:
    value = get_nested_field(example, path)
    if value is None:
        return []
    if isinstance(value, Mapping) and "answer.date" in path:
        # DROP-style date answers: join the non-empty month/day/year parts
        parts = [value[k] for k in ("month", "day", "year") if value.get(k)]
        if not parts:
            return []
        return [{ANSWER_CONFIG: path, OVERRIDE_ANSWER: " ".join(str(p) for p in parts)}]
    if is_meaningful_answer(value):
        return [{ANSWER_CONFIG: path, OVERRIDE_ANSWER: str(value)}]
    return []


def _field_with_transform(example: Mapping[str, Any], item: Mapping[str, Any]) -> list[Expansion]:
    value = get_nested_field(example, item.get("field"))
    if value is None:
        return []
    if item.get("transform") == "binary_to_bool":
        try:
            value = "true" if int(value) == 1 else "false"
        except (TypeError, ValueError):
            pass
    if is_meaningful_answer(value):
        return [{ANSWER_CONFIG: item, OVERRIDE_ANSWER: str(value)}]
    return []


def _expand_choices(example: Mapping[str, Any], spec: Mapping[str, Any]) -> list[Expansion]:
    """One expansion per option, flagged with whether it is the correct one."""
    field = spec.get("field")
    if not field:
        return []
    choices = get_nested_field(example, field)
    index_field = spec.get("correct_index")
    correct = get_nested_field(example, index_field) if index_field else None
    out: list[Expansion] = []
    if isinstance(choices, Mapping) and "text" in choices:
        labels = choices.get("label")
        labels = labels if isinstance(labels, list) else []
        for pos, text in enumerate(choices["text"]):
            flag = None
            if correct:
                flag = (labels[pos] if pos < len(labels) else None) == correct
            out.append({"choice_index": pos, OVERRIDE_ANSWER: str(text), IS_CORRECT: flag})
    elif isinstance(choices, list):
        for pos, choice in enumerate(choices):
            flag = None
            if correct is not None:
                if isinstance(correct, str) and len(correct) == 1 and correct.isalpha():
                    flag = pos == ord(correct.upper()) - ord("A")
                elif isinstance(correct, int):
                    flag = pos == correct
            out.append({"choice_index": pos, OVERRIDE_ANSWER: str(choice), IS_CORRECT: flag})
    return out


def _indexed(example: Mapping[str, Any], item: Mapping[str, Any]) -> list[Expansion]:
    """A single answer picked by a key: ``prefix + key`` names a field, or the key indexes ``field``."""
    spec = item["indexed"]
    field, key_field, prefix = spec.get("field"), spec.get("key_field"), spec.get("prefix")
    value = None
    if prefix and key_field:
        key = get_nested_field(example, key_field)
        if key is None:
            return []
        if spec.get("label_transform") == "numbers_to_letters":
            key = _numbers_to_letters(key, "A")
        value = get_nested_field(example, f"{prefix}{key}")
    elif field and key_field:
        values = get_nested_field(example, field)
        key = get_nested_field(example, key_field)
        if values is None or key is None:
            return []
        value = _pick_from_list(values, key)
    if value is not None and is_meaningful_answer(value):
        return [{ANSWER_CONFIG: item, OVERRIDE_ANSWER: str(value)}]
    return []


def _expand_prefix(example: Mapping[str, Any], spec: Mapping[str, Any]) -> list[Expansion]:
    """One expansion per top-level field named ``prefix + suffix`` (in suffix order)."""
    prefix, match_field = spec.get("prefix"), spec.get("suffix_match_field")
    if not (prefix and match_field):
        return []
    fields = sorted(
        ((name, name[len(prefix):]) for name in example if name.startswith(prefix) and len(name) > len(prefix)),
        key=lambda pair: pair[1],
    )
    correct = get_nested_field(example, match_field)
    if correct is not None and "label_transform" in spec:
        correct = _transform_suffix(correct, spec["label_transform"])
    out: list[Expansion] = []
    for name, suffix in fields:
        value = get_nested_field(example, name)
        if value is None:
            continue
        flag = str(suffix) == str(correct) if correct is not None else None
        out.append({"choice_suffix": suffix, OVERRIDE_ANSWER: str(value), IS_CORRECT: flag})
    return out


def _legacy_field(example: Mapping[str, Any], item: Mapping[str, Any]) -> list[Expansion]:
    """``{field: ...}`` with an optional ``key_field`` indexing into a list."""
    field, key_field = item.get("field"), item.get("key_field")
    if not field:
        return []
    if key_field:
        values = get_nested_field(example, field)
        key = get_nested_field(example, key_field)
        if values is None or key is None or not isinstance(values, list):
            return []
        value = _pick_from_list(values, key)
    else:
        value = get_nested_field(example, field)
    if value is not None and is_meaningful_answer(value):
        return [{ANSWER_CONFIG: item, OVERRIDE_ANSWER: str(value)}]
    return []


def expand_answers(entry: Mapping[str, Any], example: Mapping[str, Any]) -> list[Expansion]:
    """All expansions of one example; ``[{}]`` means "one record, nothing overridden"."""
    parallel = _parallel_arrays(entry, example)
    if parallel is not None:
        return parallel
    declared = entry.get("answers", entry.get("answer"))
    if not declared:
        return [{}]
    items = declared if isinstance(declared, list) else [declared]
    out: list[Expansion] = []
    for item in items:
        if isinstance(item, str):
            out.extend(_simple_field(example, item))
        elif isinstance(item, Mapping):
            if "field" in item and "transform" in item and "key_field" not in item:
                out.extend(_field_with_transform(example, item))
            elif "expand_choices" in item:
                out.extend(_expand_choices(example, item["expand_choices"] or {}))
            elif "indexed" in item:
                out.extend(_indexed(example, item))
            elif "expand_prefix" in item:
                out.extend(_expand_prefix(example, item["expand_prefix"] or {}))
            elif "array" in item:
                continue  # only meaningful together with prompts.array (handled above)
            elif "field" in item:
                out.extend(_legacy_field(example, item))
    return out or [{}]


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def extract_passage(example: Mapping[str, Any], spec: Any) -> str | None:
    if isinstance(spec, str) and spec:
        return _str_or_none(get_nested_field(example, spec))
    return None


def extract_prompt(example: Mapping[str, Any], spec: Any, expansion: Expansion) -> str | None:
    if not spec:
        return None
    if OVERRIDE_PROMPT in expansion:
        return expansion[OVERRIDE_PROMPT]
    if isinstance(spec, str):
        return _str_or_none(get_nested_field(example, spec))
    if isinstance(spec, Mapping):
        if "concat_messages" in spec:
            msg_spec = spec["concat_messages"] or {}
            messages = get_nested_field(example, msg_spec.get("field", "messages"))
            if not (messages and isinstance(messages, list)):
                return None
            content_key = msg_spec.get("content_field", "content")
            parts = [
                str(msg.get(content_key))
                for msg in messages
                if isinstance(msg, Mapping) and msg.get(content_key)
            ]
            text = " ".join(parts) if parts else None
            if "append_field" in spec:
                extra = get_nested_field(example, spec["append_field"])
                if extra:
                    text = f"{text} {extra}" if text else str(extra)
            return text
        if "field" in spec:
            return _str_or_none(get_nested_field(example, spec["field"]))
    return None


def extract_answer(example: Mapping[str, Any], spec: Any, expansion: Expansion) -> str | None:
    if OVERRIDE_ANSWER in expansion:
        return expansion[OVERRIDE_ANSWER]
    if not spec:
        return None
    if ANSWER_CONFIG in expansion:
        spec = expansion[ANSWER_CONFIG]
    if isinstance(spec, str):
        return _str_or_none(get_nested_field(example, spec))
    if isinstance(spec, list):
        first = spec[0] if spec else None
        if isinstance(first, str):
            return _str_or_none(get_nested_field(example, first))
        if not isinstance(first, Mapping):
            return None
        spec = first
    if isinstance(spec, Mapping) and "field" in spec:
        value = get_nested_field(example, spec["field"])
        if "key_field" in spec and value is not None:
            key = get_nested_field(example, spec["key_field"])
            if key is not None and isinstance(value, list):
                try:
                    pos = int(key) if isinstance(key, str) else key
                    if 0 <= pos < len(value):
                        return str(value[pos])
                except (TypeError, ValueError):
                    pass
        if value is not None:
            if isinstance(value, list) and value:
                return str(value[0])
            return str(value)
    return None


def fingerprint(record: Mapping[str, Any]) -> str:
    """First 16 hex digits of sha256(passage + question + answer), missing parts as ""."""
    passage = record.get("passage") or ""
    prompt = record.get("prompt") or record.get("question") or ""
    answer = record.get("answer") or ""
    content = f"{passage}{prompt}{answer}"
    return hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]


def build_records(
    eval_name: str,
    entry: Mapping[str, Any],
    split: str,
    examples: Iterable[Mapping[str, Any]],
    next_doc_id: list[int],
) -> Iterator[dict[str, Any]]:
    """Reference records of one split.  ``next_doc_id`` is a one-item counter shared across
    datasets of one run; it is advanced for every record yielded."""
    prompt_spec = entry.get("prompt", entry.get("prompts"))
    answer_spec = entry.get("answer", entry.get("answers"))
    no_answer = split in (entry.get("no_answer_splits") or [])
    for index, example in enumerate(examples):
        for expansion in expand_answers(entry, example):
            passage = extract_passage(example, entry.get("passage"))
            prompt = extract_prompt(example, prompt_spec, expansion)
            answer = None if no_answer else extract_answer(example, answer_spec, expansion)
            if not prompt or not prompt.strip():
                continue
            record: dict[str, Any] = {
                "eval_key": eval_name,
                "eval_instance_index": index,
                "split": split,
                "question": prompt,
            }
            if passage is not None:
                record["passage"] = passage
            if answer is not None:
                record["answer"] = answer
            record["config"] = entry.get("hf_config")
            record["doc_id"] = next_doc_id[0]
            if SUB_INDEX in expansion:
                record["sub_index"] = expansion[SUB_INDEX]
            if IS_CORRECT in expansion:
                record["is_correct"] = expansion[IS_CORRECT]
            next_doc_id[0] += 1
            record["fingerprint"] = fingerprint(record)
            yield record
