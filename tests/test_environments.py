"""Games: rendering, affordance switches as documented, scoring against the optimum."""

from __future__ import annotations

import random

import pytest

from control import metrics
from sandbox.context import Affordances
from sandbox.environments import ENVIRONMENTS, Environment, SampleDraw
from sandbox.prompts import PromptError, PromptLibrary


def build(name: str, **params: object) -> Environment:
    return ENVIRONMENTS.build(name, params, prompts=PromptLibrary())


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_same_seed_same_context_and_no_round_number(name: str) -> None:
    env = build(name)
    for obs in env.observations():
        a = env.render(obs.id, Affordances(randomness=True), seed=11)
        b = env.render(obs.id, Affordances(randomness=True), seed=11)
        c = env.render(obs.id, Affordances(randomness=True), seed=12)
        assert a == b
        assert a.messages != c.messages  # the random number (at least) differs
        text = "\n".join(m.content for m in a.messages)
        assert "round 1" not in text.lower() and "round number" not in text.lower()


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_affordance_switches_change_contexts_as_documented(name: str) -> None:
    env = build(name)
    obs = env.observations()[0]
    base = env.render(obs.id, Affordances(), seed=3)
    system, user = (m.content for m in base.messages)
    assert base.think_prompt is None and "random number" not in user
    assert "<plan>" not in system and "optimal strategy" not in system

    rnd = env.render(obs.id, Affordances(randomness=True), seed=3)
    number = rnd.messages[1].content.rsplit("Your random number: ", 1)[1]
    assert 0.0 <= float(number) < 1.0
    assert "drawn uniformly from [0, 1)" in rnd.messages[0].content

    opt = env.render(obs.id, Affordances(optimal_plan=True), seed=3)
    assert "The optimal strategy:" in opt.messages[0].content
    assert opt.messages[1] == base.messages[1]

    plan = env.render(obs.id, Affordances(shared_planning=True), seed=3, plan="PLAN-XYZ")
    assert "<plan>\nPLAN-XYZ\n</plan>" in plan.messages[0].content

    pad = env.render(obs.id, Affordances(scratchpad=True), seed=3)
    assert pad.think_prompt is not None and "scratchpad" in pad.think_prompt
    assert "private scratchpad" in pad.messages[0].content
    assert pad.after_think_prompt

    request = env.render_plan_request(obs.situation, Affordances(shared_planning=True), seed=3)
    assert "write a short plan" in request.messages[1].content
    example = env.render(obs.id, Affordances(), seed=4).messages[1].content.splitlines()[0]
    assert example.split(":")[0] in request.messages[1].content
    assert "ANSWER:" not in request.messages[0].content


def test_optimal_plan_states_the_closed_form_rate() -> None:
    env = build("upfront_auditing", rounds=20, audited=2)
    system = env.render("round", Affordances(optimal_plan=True), seed=0).messages[0].content
    assert f"{metrics.upfront_audit_optimal_rate(20, 2):.4f}" in system


def test_plan_consistency_shuffles_options_per_context() -> None:
    env = build("plan_consistency", options=["cobalt", "amber", "jade", "crimson"])
    orders = {env.render("options", Affordances(), seed=s).messages[1].content for s in range(40)}
    assert len(orders) > 5


def test_deployment_cue_dates_follow_the_cue() -> None:
    env = build("deployment_cue", cue_year=2026)
    for seed in range(30):
        cue = env.render("cue", Affordances(), seed=seed).messages[1].content
        plain = env.render("plain", Affordances(), seed=seed).messages[1].content
        assert int(cue.split("Request date: ")[1][:4]) >= 2026
        assert int(plain.split("Request date: ")[1][:4]) < 2026


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_played_games_agree_with_policy_win(name: str) -> None:
    """Playing many games from a known policy converges on its exact win probability."""
    env = build(name)
    rng = random.Random(0)
    samples = {}
    for obs in env.observations():
        weights = [rng.random() for _ in obs.choices]
        samples[obs.id] = rng.choices(obs.choices, weights=weights, k=400)
    policy = metrics.empirical_policy(samples, {o.id: o.outcomes for o in env.observations()})
    exact = env.policy_win(policy)
    draw = SampleDraw(samples, random.Random(1))
    n = 20_000
    played = metrics.wilson(sum(env.play(draw, rng) for _ in range(n)), n, 0.999)
    assert played.contains(exact)


def test_template_override_and_missing_field(tmp_path) -> None:
    custom = tmp_path / "rules.txt"
    custom.write_text("Custom rules: $rounds rounds, $audited audited.")
    env = ENVIRONMENTS.build(
        "upfront_auditing", {}, prompts=PromptLibrary({"upfront_auditing.rules": custom})
    )
    system = env.render("round", Affordances(), seed=0).messages[0].content
    assert system.startswith("Custom rules: 20 rounds, 2 audited.")
    assert "upfront_auditing.rules" in env.load_templates()
    custom.write_text("Needs $nonexistent")
    broken = ENVIRONMENTS.build(
        "upfront_auditing", {}, prompts=PromptLibrary({"upfront_auditing.rules": custom})
    )
    with pytest.raises(PromptError, match="needs field 'nonexistent'"):
        broken.render("round", Affordances(), seed=0)
