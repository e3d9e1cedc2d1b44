"""Ctrl-C and SIGTERM in tune_app.search: a second signal stops at once, and only raises where
the code around it expects it (inside Tune's run)."""

from __future__ import annotations

import signal

import pytest

from tune_app import search


@pytest.fixture
def interrupts(monkeypatch):
    # The first signal asks Tune to stop by sending this process SIGUSR1; the handlers are set
    # to "ignore" after the second: neither may touch the test process.
    monkeypatch.setattr(search.os, "kill", lambda pid, signum: None)
    monkeypatch.setattr(search.signal, "signal", lambda signum, handler: None)
    return search._Interrupts()


def test_a_second_signal_inside_tune_s_run_stops_it_at_once(interrupts):
    interrupts(signal.SIGINT, None)
    assert interrupts.count == 1 and not interrupts.at_once  # the first one stops gracefully
    with pytest.raises(KeyboardInterrupt):
        with interrupts.fitting():
            interrupts(signal.SIGINT, None)
    assert interrupts.at_once


def test_a_second_signal_after_tune_s_run_never_raises(interrupts):
    # It came during the summary (a real run: inside sklearn's import for the importance, where
    # a KeyboardInterrupt came out as a ValueError and a traceback, exit 1 instead of 130).
    with interrupts.fitting():
        interrupts(signal.SIGINT, None)
    interrupts(signal.SIGTERM, None)
    assert interrupts.at_once and interrupts.count == 2


def test_the_summary_after_a_stop_at_once_leaves_out_the_slow_parts(monkeypatch, tmp_path, capsys):
    from types import SimpleNamespace

    import tune_app.experiment
    import tune_app.importance

    experiment = SimpleNamespace(table=lambda: [], trials=[], max_epochs=2, seeded=False,
                                 meta={"scheduler": {"name": "none"}})
    monkeypatch.setattr(tune_app.experiment, "load_experiment", lambda path: experiment)

    def importance(exp):
        raise AssertionError("the importance ran after a stop at once")

    monkeypatch.setattr(tune_app.importance, "print_importance", importance)
    assert search._print_summary(tmp_path, 1.0, brief=lambda: True) == []
    assert "0 trials, 0 epochs trained in 1.0 s" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="importance ran"):
        search._print_summary(tmp_path, 1.0, brief=lambda: False)
