"""A file that is not an NPY array is told apart in words: text renamed .npy, empty, other bytes."""

from __future__ import annotations

import pytest

from engine.core.errors import InputError
from engine.core.imageio import read_image


@pytest.mark.parametrize("data, words", [
    (b"1,2,3\n4,5,6\n", "this is a text file"),
    (b"", "empty"),
    (b"\x00\x01\x02\xff binary", "does not start with the NPY magic bytes"),
    (b"\x93NUMPY\x01\x00\xff\xffgarbage", "NPY header is damaged"),
])
def test_not_an_npy_file_says_what_it_is(tmp_path, data, words):
    p = tmp_path / "notes.npy"
    p.write_bytes(data)
    with pytest.raises(InputError) as e:
        read_image(p)
    msg = str(e.value)
    assert words in msg and "pickled" not in msg and "\n" not in msg, msg
