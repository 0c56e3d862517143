"""The dispatcher and episode drivers: concurrent asks merged into engine batches, each driver
given back its own outcomes; a two-role episode where one context's output feeds a second
context on another model and backend, over Ray and in-process."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from sandbox.config import ConfigError, config_from_mapping, load_config
from sandbox.core.context import (
    Affordances,
    ChoiceAnswer,
    Context,
    ContextOutcome,
    Message,
    Rendered,
)
from sandbox.core.episode import Ask, build_context
from sandbox.core.prompts import PromptLibrary
from sandbox.engines import ENGINES, Engine, EngineDeps
from sandbox.environments import ENVIRONMENTS
from sandbox.record.runstore import RESULTS
from sandbox.run.checks import check_config
from sandbox.run.dispatch import Dispatcher
from sandbox.run.runner import build_engine, run_config
from tests.conftest import REPO, small_config

OPTIONS = ("cobalt", "amber", "jade", "crimson")
NONE = Affordances()


class Recording:
    """A real engine, with a record of the batches it was handed and how many ran at once."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.batches: list[list[str]] = []
        self.running = self.most_running = 0

    async def start(self) -> None:
        await self.inner.start()

    async def run(self, contexts: Sequence[Context]) -> list[ContextOutcome]:
        self.batches.append([c.context_id for c in contexts])
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(0.01)  # let other batches start, were the limit not kept
            return await self.inner.run(contexts)
        finally:
            self.running -= 1

    async def close(self) -> None:
        await self.inner.close()


def _local(models: dict[str, tuple[str, dict]] | None = None) -> Engine:
    models = models or {m: ("scripted", {}) for m in ("honest", "random")}
    return ENGINES.build("local", {}, deps=EngineDeps(models=models, max_reasks=0))


def _options_context(cid: str, model: str, order: Sequence[str], seed: int = 0) -> Context:
    """A plan-consistency context showing the options in `order`, rendered from the game's
    own templates."""
    env = ENVIRONMENTS.build("plan_consistency", {}, prompts=PromptLibrary())
    obs = env.observation("options")
    order = tuple(order)
    fields = env.observation_fields(obs, order, random.Random(seed))
    rendered = Rendered(
        messages=(
            Message(role="system", content=env.system_prompt(obs.situation, NONE, None, order)),
            Message(
                role="user",
                content=env.prompts.render(f"{env.template_prefix}.observation", **fields),
            ),
        ),
        answer=ChoiceAnswer(choices=order),
        think_prompt=None,
        after_think_prompt="",
        reask_prompt=env.prompts.render("reask", choices=", ".join(order)),
    )
    return build_context(
        context_id=cid,
        episode_id=cid.rsplit("/", 1)[0],
        model=model,
        game="plan_consistency",
        observation=obs.id,
        rendered=rendered,
        affordances=NONE,
        run_seed=seed,
        copies=4,
    )


async def test_concurrent_asks_share_batches_and_get_their_own_outcomes() -> None:
    engine = Recording(_local())
    async with Dispatcher(engine, max_asks=10, max_in_flight=2) as dispatcher:

        async def driver(i: int) -> list[ContextOutcome]:
            contexts = [_options_context(f"e{i}/c{j}", "honest", OPTIONS, seed=i) for j in (0, 1)]
            return await dispatcher.ask(contexts)

        results = await asyncio.gather(*(driver(i) for i in range(25)))
    # 25 asks arriving together: batches of at most 10 asks (20 contexts), never more than two
    # running at once, every context sent exactly once
    assert [len(b) for b in engine.batches] == [20, 20, 10]
    assert engine.most_running == 2
    sent = [cid for batch in engine.batches for cid in batch]
    assert sorted(sent) == sorted(f"e{i}/c{j}" for i in range(25) for j in (0, 1))
    for i, outcomes in enumerate(results):
        assert [o.action.context_id for o in outcomes] == [f"e{i}/c0", f"e{i}/c1"]
        assert all(o.action.choice == "cobalt" for o in outcomes)  # honest takes the first


async def test_a_failed_batch_fails_only_its_own_asks() -> None:
    engine = Recording(_local())
    async with Dispatcher(engine, max_asks=1, max_in_flight=1) as dispatcher:
        good = _options_context("e0/c0", "honest", OPTIONS)
        bad = _options_context("e1/c0", "nobody", OPTIONS)  # no backend serves this model
        results = await asyncio.gather(
            dispatcher.ask([good]), dispatcher.ask([bad]), return_exceptions=True
        )
    assert isinstance(results[0], list) and results[0][0].action.choice == "cobalt"
    assert isinstance(results[1], KeyError) and "no backend serves model 'nobody'" in str(
        results[1]
    )


def _two_role_config(tmp_path: Path, **sections: object) -> dict:
    roles = {"models": ["random"], "trusted": {"model": "honest", "backend": {"name": "scripted"}}}
    return small_config(tmp_path, **{**roles, **sections})


async def _two_role_episode(ask: Ask, index: int) -> tuple[str | None, str | None, Context]:
    """The untrusted policy (`random`) picks an option; a trusted context on another model
    (`honest`, which takes the first option listed) is shown the options with the policy's
    pick first: its answer can only match the policy's by reading the policy's output."""
    policy_ctx = _options_context(f"ep{index}/policy", "random", OPTIONS, seed=index)
    (policy,) = await ask([policy_ctx])
    picked = policy.action.choice
    assert picked is not None
    order = (picked, *(o for o in OPTIONS if o != picked))
    trusted_ctx = _options_context(f"ep{index}/trusted", "honest", order, seed=index)
    trusted_ctx = trusted_ctx.model_copy(update={"role": "trusted"})
    (trusted,) = await ask([trusted_ctx])
    return picked, trusted.action.choice, trusted_ctx


@pytest.mark.parametrize("engine_name", ["local", "ray"])
async def test_two_role_episode_through_the_dispatcher(
    tmp_path: Path, ray_cluster: str, engine_name: str
) -> None:
    engine_section = {"name": "ray", "params": {"address": ray_cluster}}
    config = check_config(
        config_from_mapping(
            _two_role_config(
                tmp_path,
                engine=engine_section if engine_name == "ray" else {"name": "local"},
            )
        )
    )
    assert config.model_backends() == {"random": ("scripted", {}), "honest": ("scripted", {})}
    engine = build_engine(config, run_id=f"two-role-{engine_name}")
    await engine.start()
    try:
        async with Dispatcher(engine, max_asks=8, max_in_flight=2) as dispatcher:
            episodes = await asyncio.gather(
                *(_two_role_episode(dispatcher.ask, i) for i in range(24))
            )
    finally:
        await engine.close()
    picks = [picked for picked, _, _ in episodes]
    assert len(set(picks)) > 1, "the policy's picks should vary with the seed"
    for picked, trusted_choice, ctx in episodes:
        assert trusted_choice == picked
        assert ctx.role == "trusted" and ctx.model == "honest"


def test_a_model_name_names_one_backend(tmp_path: Path) -> None:
    data = _two_role_config(tmp_path, models=["honest"])
    data["trusted"] = {"model": "honest", "backend": {"name": "openai"}}
    with pytest.raises(ConfigError, match="a model name must name one backend"):
        config_from_mapping(data)
    data["trusted"] = {"model": "nobody"}
    with pytest.raises(ConfigError) as info:
        check_config(config_from_mapping(data))
    assert info.value.path == "trusted.model"


QUICKSTART_RESULTS_SHA256 = "838106a5fd27a990316d354b83e803c05494f9f658fd7c0f39b0ac63ce37253c"
"""results.jsonl of configs/quickstart.yaml as it was before episode drivers (seed 0)."""


def test_quickstart_written_before_drivers_gives_the_same_results(
    tmp_path: Path, ray_cluster: str
) -> None:
    """The stored config (`engine: ray` with its own `ray:` section, as configs were then)
    still loads, and its results are byte-identical to those recorded before the change."""
    path = REPO / "tests" / "data" / "quickstart_before_drivers.yaml"
    overrides = [f"run.output_dir={tmp_path}", f"ray.address={ray_cluster}"]
    config = check_config(load_config(path, overrides))
    assert config.engine.name == "ray" and config.engine.params["address"] == ray_cluster
    run_dir, summary = run_config(config)
    assert hashlib.sha256((run_dir / RESULTS).read_bytes()).hexdigest() == (
        QUICKSTART_RESULTS_SHA256
    )
    strategist = summary["models"]["stateless_strategist"]
    assert strategist["measured_profile"] == {"cross_context": "yes"}
