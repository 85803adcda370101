"""Which jobs ``python -m bench --jobs`` runs, and which ratios a subset can give."""

from __future__ import annotations

import pytest

from bench.runner import JOBS, main, ratios, resolve_jobs


def test_a_subset_brings_what_it_needs_in_run_order() -> None:
    assert resolve_jobs(["state"]) == ("state",)
    assert resolve_jobs(["deliver"]) == ("derive", "deliver")
    assert resolve_jobs(["latency", "produce"]) == ("produce", "derive", "deliver", "latency")
    assert resolve_jobs(["peer", "ceiling", "derive"]) == ("ceiling", "derive", "peer")
    assert resolve_jobs(JOBS) == JOBS


def test_ratios_only_against_what_ran_in_the_same_repeat() -> None:
    derive = {"derive": {"rec_per_s": 3_000.0}}
    ceiling = {"ceiling": {"consume_rec_per_s": 30_000.0, "decode_rec_per_s": 10_000.0}}
    peer = {"peer": {"rec_per_s": 2_000.0}}
    assert ratios(derive) == {}
    assert ratios({**ceiling, **peer}) == {}
    assert ratios({**derive, **ceiling}) == {"ratio_to_consume": 0.1, "ratio_to_decode": 0.3}
    assert ratios({**derive, **peer}) == {"ratio_to_peer": 1.5}


def test_unknown_job_names_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--jobs", "derive,ceilings"])
    assert "unknown jobs ['ceilings']" in capsys.readouterr().err
