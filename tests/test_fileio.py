"""tune_app/fileio.py: atomic writes that survive a full disk, reads that name the bad file."""

from __future__ import annotations

import json

import pytest

from tune_app.errors import UsageError
from tune_app.fileio import DiskFull, read_json, write_atomic, write_json_atomic, write_text_atomic


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "experiment.json"
    write_json_atomic(target, {"status": "running"})

    def half_then_crash(f):
        f.write('{"status": "fini')
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_atomic(target, half_then_crash)
    assert json.loads(target.read_text()) == {"status": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["experiment.json"]


def test_a_full_disk_is_one_line_naming_the_folder_and_keeps_the_old_file(small_fs):
    fs = small_fs("64k")
    target = fs / "trials.json"
    write_text_atomic(target, "[]")
    with pytest.raises(DiskFull) as err:
        write_text_atomic(target, "x" * 200_000)
    assert str(fs) in err.value.one_line() and "no space left" in err.value.one_line()
    assert "--resume" in err.value.one_line()
    assert target.read_text() == "[]"
    assert sorted(p.name for p in fs.iterdir()) == ["trials.json"]  # no 0-byte or partial leftovers


def test_a_read_only_folder_is_one_line(small_fs):
    fs = small_fs("64k", read_only=True)
    with pytest.raises(UsageError, match="cannot write here"):
        write_text_atomic(fs / "report.md", "# report")


@pytest.mark.parametrize("content, message", [
    (None, "is missing"),
    (b"", "is empty"),
    (b"   \n", "is empty"),
    (b'{"status": "runn', "is not valid JSON"),
    (b"\xff\xfe garbage", "cannot read"),
])
def test_reads_name_the_file_and_say_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "experiment.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UsageError) as err:
        read_json(path, what="the experiment's record", fix="restore it")
    line = err.value.one_line()
    assert line.startswith(str(path)) and message in line and "(fix: restore it)" in line


def test_missing_ok_returns_none_but_empty_is_still_an_error(tmp_path):
    assert read_json(tmp_path / "ended.json", what="x", fix="y", missing_ok=True) is None
    (tmp_path / "ended.json").write_text("")
    with pytest.raises(UsageError, match="is empty"):
        read_json(tmp_path / "ended.json", what="x", fix="y", missing_ok=True)
