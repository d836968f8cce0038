"""Build the demo collection shipped with latesearch: Python standard-library docstrings.

Each passage is the first paragraphs of the docstring of a public function or class of a
standard-library module, titled ``module.name``. The text is Python's own documentation
(PSF License Agreement, which permits redistribution). Run with the Python whose docs you
want; the committed file was made with CPython 3.11.

    python scripts/make_demo_collection.py latesearch/resources/demo/collection.jsonl
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys

MODULES = (
    "argparse base64 bisect calendar collections copy csv datetime decimal difflib "
    "fnmatch fractions functools glob gzip hashlib heapq hmac html itertools json "
    "logging math operator os os.path pathlib pickle pprint queue random re secrets shlex "
    "shutil socket sqlite3 statistics string struct subprocess tempfile textwrap threading "
    "time timeit unicodedata urllib.parse uuid zipfile zlib"
).split()
MIN_CHARS, MAX_WORDS = 80, 140


def first_paragraphs(doc: str) -> str:
    """Leading paragraphs of a docstring, up to MAX_WORDS words, on one line."""
    words: list[str] = []
    for paragraph in inspect.cleandoc(doc).split("\n\n"):
        if paragraph.lstrip().startswith((">>>", "Example", "Usage", "::")):
            break
        words.extend(paragraph.split())
        if len(words) >= MAX_WORDS // 2:
            break
    return " ".join(words[:MAX_WORDS])


def passages():
    seen = set()
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, obj in sorted(vars(module).items()):
            if attr.startswith("_") or not (
                inspect.isfunction(obj) or inspect.isclass(obj) or inspect.isbuiltin(obj)
            ):
                continue
            if (getattr(obj, "__module__", None) or "").lstrip("_").split(".")[0] not in name:
                continue
            text = first_paragraphs(inspect.getdoc(obj) or "")
            title = f"{name}.{attr}"
            if len(text) < MIN_CHARS or text in seen:
                continue
            seen.add(text)
            yield {"_id": title, "title": title, "text": text}


def main(out: str) -> None:
    rows = list(passages())
    with open(out, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} passages -> {out}")


if __name__ == "__main__":
    main(sys.argv[1])
