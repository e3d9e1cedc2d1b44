"""Checkpoint files: a trial's staged checkpoint packs its tensors and reads back unchanged."""

from __future__ import annotations

import pytest
import torch

from tune_app.checkpoint import PACKED, load_checkpoint, pack, save_checkpoint
from tune_app.errors import UsageError


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def a_state():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.LazyLinear(3))
    model(torch.randn(2, 1, 6, 6)).sum().backward()
    optimizer = torch.optim.Adam(model.parameters())
    optimizer.step()
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 2,
            "config": {"train": {"lr": 1e-3}}, "class_names": ["a", "b", "c"],
            "odd": (torch.tensor(True), [torch.arange(5, dtype=torch.int16), torch.randn(3, 2).t(),
                                         torch.zeros(0), torch.tensor(2.5, dtype=torch.float64),
                                         torch.tensor([True, False, True])])}


def test_a_staged_checkpoint_packs_every_tensor_and_reads_back_the_same_state(tmp_path):
    state = a_state()
    save_checkpoint(tmp_path, state, staging=True)
    raw = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    tensors = []

    def collect(value):
        if isinstance(value, torch.Tensor):
            tensors.append(value)
        elif isinstance(value, dict):
            [collect(v) for v in value.values()]
        elif isinstance(value, (list, tuple)):
            [collect(v) for v in value]

    collect(raw)
    assert len(tensors) == 1 and tensors[0] is raw[PACKED]  # one buffer, whatever the state holds
    assert same(state, load_checkpoint(tmp_path))
    # An optimizer and a model take the state back as they gave it.
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.Linear(64, 3))
    model.load_state_dict(load_checkpoint(tmp_path)["model"])
    torch.optim.Adam(model.parameters()).load_state_dict(load_checkpoint(tmp_path)["optimizer"])


def test_a_kept_checkpoint_stays_a_plain_state_dict(tmp_path):
    state = a_state()
    save_checkpoint(tmp_path, state)
    assert PACKED not in torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert same(state, load_checkpoint(tmp_path))


@pytest.mark.parametrize("damage", ["offset past the end", "misaligned", "not a dtype", "no such name"])
def test_a_packed_index_that_does_not_fit_its_buffer_is_one_line(tmp_path, damage):
    packed = pack(a_state())
    ref = packed["model"]["0.weight"]["packed_tensor"]
    if damage == "offset past the end":
        ref[0] = packed[PACKED].numel()
    elif damage == "misaligned":
        ref[0] += 1
    elif damage == "not a dtype":
        ref[1] = "Tensor"
    else:
        ref[1] = "float1024"
    torch.save(packed, tmp_path / "checkpoint.pt")
    with pytest.raises(UsageError, match="unreadable checkpoint"):
        load_checkpoint(tmp_path)
