"""Durable writes: a failed write leaves the previous file or folder untouched."""

from __future__ import annotations

import json

import pytest

from latesearch._atomic import replace_folder, write_json, write_text


def test_write_json_replaces_whole_and_keeps_old_on_failure(tmp_path):
    path = tmp_path / "config.json"
    write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json(path, {"a": object()})  # not serializable: fails mid-write
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temp left behind


def test_write_text_keeps_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "qrels.txt"
    write_text(path, "q 0 d 1\n")
    with pytest.raises(UnicodeEncodeError):
        write_text(path, "q 0 d 1\n" * 1000 + "\ud800")  # fails while writing the temp file
    assert path.read_text() == "q 0 d 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["qrels.txt"]


def test_replace_folder_swaps_and_cleans_up(tmp_path):
    target, new = tmp_path / "index", tmp_path / ".index.tmp"
    target.mkdir()
    (target / "old.txt").write_text("old")
    new.mkdir()
    (new / "new.txt").write_text("new")
    replace_folder(new, target)
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["index"]
    fresh = tmp_path / ".fresh.tmp"
    fresh.mkdir()
    replace_folder(fresh, tmp_path / "other")
    assert (tmp_path / "other").is_dir() and not fresh.exists()


def test_check_replaceable_refuses_unrelated_data(tmp_path):
    from latesearch._atomic import check_replaceable
    from latesearch.errors import InputError

    check_replaceable(tmp_path / "absent", "manifest.json")
    (tmp_path / "empty").mkdir()
    check_replaceable(tmp_path / "empty", "manifest.json")
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "manifest.json").write_text("{}")
    check_replaceable(tmp_path / "index", "manifest.json")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff")
    with pytest.raises(InputError, match="refusing to replace .*photos"):
        check_replaceable(tmp_path / "photos", "manifest.json")
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="refusing"):
        check_replaceable(tmp_path / "notes.txt", "manifest.json")
