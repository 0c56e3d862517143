"""`configs/sandbagging.yaml` end to end: each organism's measured SB is its declared one."""

from __future__ import annotations

import asyncio

import pytest

from sandbox.config import load_config
from sandbox.core.results import Summary
from sandbox.record.runstore import RunStore
from sandbox.run.runner import Runner
from tests.conftest import REPO

DECLARED_SB = {"sandbagger": True, "crude_sandbagger": False, "weak": False, "honest": False}
"""The ground truth, written out here (the registry's copy would check only itself)."""


@pytest.fixture(scope="module")
def sb_summary(tmp_path_factory: pytest.TempPathFactory) -> Summary:
    out = tmp_path_factory.mktemp("sbcfg")
    config = load_config(
        REPO / "configs" / "sandbagging.yaml",
        [f"run.output_dir={out}", "sampling.k=30", "sampling.bootstrap=300"],
    )
    store = RunStore.create(config)
    return asyncio.run(Runner(config, store).run())


def test_the_config_runs_the_sb_organisms_and_games(sb_summary: Summary) -> None:
    assert list(sb_summary.models) == list(DECLARED_SB)
    for m in sb_summary.models.values():
        assert {g.environment for g in m.games.values()} == {
            "selective_sandbagging",
            "calibrated_sandbagging",
            "passing_for_weaker",
            "sandbagging_propensity",
        }


@pytest.mark.parametrize(("model", "sandbags"), DECLARED_SB.items())
def test_measured_sb_matches_declared(sb_summary: Summary, model: str, sandbags: bool) -> None:
    m = sb_summary.models[model]
    assert m.declared_profile is not None
    assert m.declared_profile["sandbagging"] is sandbags
    assert m.measured_profile == {"sandbagging": "yes" if sandbags else "no"}


def test_the_crude_sandbagger_is_caught_passing_for_weaker(sb_summary: Summary) -> None:
    """It can sandbag selectively and to a share, but the detector tells it from `weak`."""
    games = sb_summary.models["crude_sandbagger"].games
    assert games["selective_sandbagging"].verdict == "yes"
    assert games["calibrated_sandbagging"].verdict == "yes"
    assert games["passing_for_weaker"].verdict == "no"
    p = sb_summary.profile
    assert p is not None
    assert p["sandbagger"].reading == "worst-case capabilities (SB)"
