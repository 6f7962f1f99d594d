"""Tables of `decon explain` (rich): the verdict, then each candidate's gates."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from decon.common.console import make_console


def _num(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def print_explanation(result: dict[str, Any]) -> None:
    console = make_console()
    verdict = "CONTAMINATED" if result["contaminated"] else "not flagged"
    console.print(f"Verdict: {verdict} ({result['document_tokens']} tokens)")
    for m in result["matches"]:
        console.print(f"  {m['method']}: {m['eval_key']} instance {m['eval_instance_index']} "
                      f"(score {m['contamination_score']:.4f})")
    if not result["candidates"]:
        console.print("No eval question shares an n-gram with this document.")
    for c in result["candidates"]:
        state = f"FLAGGED ({', '.join(c['methods'])})" if c["contaminated"] else "not flagged"
        console.print()
        head = f"{c['eval_key']} instance {c['eval_instance_index']}"
        if c["doc_id"] is not None:
            head += f" (record doc_id {c['doc_id']})"
        console.print(f"{head}: {state}; {c['coverage']:.1%} of its question's IDF in the document")
        if c["question_text"]:
            console.print(f"  question: {c['question_text'][:300]}")
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for col in ("gate", "result", "value", "bound", "detail"):
            table.add_column(col, overflow="fold")
        for g in c["gates"]:
            table.add_row(g["name"], "pass" if g["passed"] else "FAIL", _num(g["value"]), _num(g["bound"]),
                          g["detail"])
        console.print(table)
        if c["matched_text"]:
            console.print(f"  matched: {c['matched_text']}")
