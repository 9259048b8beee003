"""Small text files of a run (options, metrics, summary), written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chainrule.atomic import write_text_atomic


def write_json(path: Path, payload: Any) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    write_text_atomic(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
