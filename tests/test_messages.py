"""Messages that tell the user what is wrong (issue 12, item 6): damaged vs. refused weight files, library text
shortened at word boundaries."""

from __future__ import annotations

import pickle

import pytest
import torch

from posevid.errors import CheckpointError, short_reason
from posevid.utils.checkpoint import load_state_dict_file


def _write(path, how: str) -> None:
    if how == "random_bytes":
        path.write_bytes(bytes((i * 37 + 11) % 256 for i in range(4000)))
    elif how == "text":
        path.write_text("<html>404 not found</html>\n" * 20)
    elif how == "truncated_zip":
        torch.save({"w": torch.zeros(5000)}, path)
        path.write_bytes(path.read_bytes()[:3000])
    elif how == "truncated_legacy":
        torch.save({"w": torch.zeros(5000)}, path, _use_new_zipfile_serialization=False)
        path.write_bytes(path.read_bytes()[:2000])  # cut inside the tensor data


@pytest.mark.parametrize("how", ["random_bytes", "text", "truncated_zip", "truncated_legacy"])
def test_damaged_weight_file_says_re_download(tmp_path, how):
    path = tmp_path / "pytorch_model.bin"
    _write(path, how)
    with pytest.raises(CheckpointError) as exc:
        load_state_dict_file(path)
    msg = str(exc.value)
    assert "damaged" in msg and "re-download it" in msg, msg
    assert "Python objects" not in msg and "safetensors" not in msg, msg


class _Payload:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize("protocol", [2, 4])
def test_pickle_with_code_is_refused_not_called_damaged(tmp_path, protocol, capsys):
    path = tmp_path / "model.pth"
    path.write_bytes(pickle.dumps({"w": _Payload()}, protocol=protocol))
    with pytest.raises(CheckpointError, match="refusing to load .* contains Python objects"):
        load_state_dict_file(path)
    assert "pwned" not in capsys.readouterr().out


def test_short_reason_keeps_whole_words_and_the_first_sentence():
    long = RuntimeError("PytorchStreamReader failed reading zip archive: failed finding central directory. This is an internal error.")
    assert short_reason(long) == "PytorchStreamReader failed reading zip archive: failed finding central directory"
    words = RuntimeError(" ".join(["truncatedword"] * 40))
    text = short_reason(words, limit=100)
    assert text.endswith(" …") and all(w == "truncatedword" for w in text[:-2].split()), text
    assert short_reason(KeyError("101")) == "KeyError: '101'"
