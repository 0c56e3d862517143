"""Config loading, overrides and the CLI's handling of bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sandbox.config import ConfigError, config_from_mapping, load_config
from sandbox.run.checks import check_config
from tests.conftest import REPO, cli


def test_quickstart_config_loads() -> None:
    config = load_config(REPO / "configs" / "quickstart.yaml")
    assert config.backend.name == "scripted"
    assert [g.game_id for g in config.games] == [
        "upfront_auditing",
        "deployment_cue",
        "plan_consistency",
        "situation_sweep",
        "schelling",
        "signal_agreement",
        "training_gaming",
        "selective_sandbagging",
    ]
    assert "focal_colluder" in config.models
    # the SB part: the sandbagger to show SB, at a game k of its own, not sampling.k's 300
    assert "sandbagger" in config.models
    assert config.games[-1].k == 2 and config.sampling.k == 300


def test_overrides_set_nested_keys_and_list_items(tmp_config) -> None:
    config = config_from_mapping(
        tmp_config(),
        [
            "agents.copies=8",
            "games.0.params.rounds=50",
            "affordances.randomness=true",
            "models=[honest]",
        ],
    )
    assert config.agents.copies == 8
    assert config.games[0].params["rounds"] == 50
    assert config.affordances.randomness is True
    assert config.models == ["honest"]


@pytest.mark.parametrize(
    ("overrides", "path", "reason"),
    [
        (["agents.copiez=3"], "agents.copiez", "unknown key; did you mean 'copies'?"),
        (["agents.copies=0"], "agents.copies", "greater than or equal to 1"),
        (["games.0.params.rounds=1"], "games.0.params.rounds", "greater than or equal to 2"),
        (["games.0.params.colour=red"], "games.0.params.colour", "unknown key; known:"),
        (["games.0.params.round=9"], "games.0.params.round", "did you mean 'rounds'?"),
        (["models=[honset]"], "models.0", "no organism 'honset'; did you mean 'honest'?"),
        (["games.0.params.audited=30"], "games.0.params", "must be below rounds"),
        (["games.5.name=x"], "games.5", "out of range"),
        (["models=[nobody]"], "models.0", "no organism 'nobody'"),
        (["backend.name=carrier_pigeon"], "backend", "unknown backend 'carrier_pigeon'"),
        (["games.1.name=chess"], "games.1", "unknown environment 'chess'"),
        (["nokey"], "nokey", "key.path=value"),
        (["sampling.confidence=2"], "sampling.confidence", "less than 1"),
    ],
)
def test_bad_config_names_the_key_path(tmp_config, overrides, path, reason) -> None:
    with pytest.raises(ConfigError) as info:
        check_config(config_from_mapping(tmp_config(), overrides))
    assert info.value.path == path
    assert reason in info.value.reason


def test_duplicate_game_ids_rejected(tmp_config) -> None:
    games = [{"name": "plan_consistency"}, {"name": "plan_consistency"}]
    with pytest.raises(ConfigError, match="game ids must be distinct"):
        config_from_mapping(tmp_config(games=games))


def test_digest_changes_with_config(tmp_config) -> None:
    a = config_from_mapping(tmp_config())
    b = config_from_mapping(tmp_config(), ["run.seed=8"])
    assert a.digest() == config_from_mapping(tmp_config()).digest()
    assert a.digest() != b.digest()


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("agents.copies=-1", "agents.copies"),
        ("games.0.params.audited=99", "games.0.params"),
        ("sampling.k=lots", "sampling.k"),
    ],
)
def test_cli_bad_config_exits_2_without_run_dir(tmp_path, tmp_config, override, expected) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tmp_config()))
    proc = cli("run", str(path), override, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_cli_unreadable_or_invalid_yaml_exits_2(tmp_path) -> None:
    proc = cli("run", str(tmp_path / "missing.yaml"), cwd=tmp_path)
    assert proc.returncode == 2 and "no such config" in proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [honest\n")
    proc = cli("run", str(bad), cwd=tmp_path)
    assert proc.returncode == 2 and "not valid YAML" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_cli_resume_of_non_run_dir_exits_2(tmp_path) -> None:
    proc = cli("run", "--resume", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and "not a run directory" in proc.stderr


def test_cli_accepts_options_between_overrides(tmp_path, tmp_config) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tmp_config()))
    proc = cli("run", str(path), "--quiet", "agents.copies=0", cwd=tmp_path)
    assert proc.returncode == 2 and "agents.copies" in proc.stderr
    proc = cli("run", str(path), "--bogus", cwd=tmp_path)
    assert proc.returncode == 2 and "unrecognized arguments: --bogus" in proc.stderr


def test_missing_api_key_variable_is_a_config_error(tmp_config, monkeypatch) -> None:
    monkeypatch.delenv("SANDBOX_NO_SUCH_KEY", raising=False)
    backend = {"name": "openai", "params": {"api_key_env": "SANDBOX_NO_SUCH_KEY"}}
    with pytest.raises(ConfigError) as info:
        check_config(config_from_mapping(tmp_config(backend=backend)))
    assert info.value.path == "backend.params.api_key_env"
    assert "'SANDBOX_NO_SUCH_KEY' is not set" in info.value.reason


def test_unknown_template_name_is_a_config_error(tmp_path, tmp_config) -> None:
    text = tmp_path / "rules.txt"
    text.write_text("rules")
    games = [{"name": "upfront_auditing", "templates": {"upfront_auditing.rulez": str(text)}}]
    with pytest.raises(ConfigError) as info:
        check_config(config_from_mapping(tmp_config(games=games)))
    assert info.value.path == "games.0.templates.upfront_auditing.rulez"
    assert "no such template" in info.value.reason


def test_unwritable_output_dir_exits_2(tmp_path, tmp_config) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tmp_config()))
    proc = cli("run", str(path), f"run.output_dir={blocker}/runs", cwd=tmp_path)
    assert proc.returncode == 2 and "run.output_dir" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_game_affordances_merge_over_top_level_and_survive_a_reload(tmp_config) -> None:
    data = tmp_config(
        affordances={"scratchpad": True},
        games=[
            {"name": "upfront_auditing", "affordances": {"randomness": True}},
            {"name": "plan_consistency", "affordances": {"scratchpad": False}},
        ],
    )
    config = config_from_mapping(data)
    first, second = (config.affordances_for(g) for g in config.games)
    assert first.scratchpad and first.randomness
    assert not second.scratchpad and not second.randomness
    reloaded = config_from_mapping(config.resolved())
    assert [reloaded.affordances_for(g) for g in reloaded.games] == [first, second]
    assert reloaded.digest() == config.digest()


@pytest.mark.parametrize(
    ("engine", "overrides", "expected"),
    [
        # configs written before engines were registry entries
        (
            {"engine": "ray", "ray": {"address": "auto", "spread": False}},
            [],
            ("ray", {"address": "auto", "spread": False}),
        ),
        ({"engine": "local", "ray": {"address": "auto"}}, [], ("local", {})),
        ({}, ["ray.address=auto"], ("ray", {"address": "auto"})),
        # registry entries
        (
            {"engine": {"name": "ray", "params": {"address": None}}},
            ["ray.address=auto"],
            ("ray", {"address": "auto"}),
        ),
        ({"engine": {"name": "ray"}}, ["engine=local"], ("local", {})),
        (
            {"engine": {"name": "ray"}},
            ["engine.params.max_restarts=5"],
            ("ray", {"max_restarts": 5}),
        ),
    ],
)
def test_engine_is_a_registry_entry_and_old_configs_still_load(
    tmp_config, engine, overrides, expected
) -> None:
    data = tmp_config()
    data.pop("engine")
    data.update(engine)
    config = check_config(config_from_mapping(data, overrides))
    assert (config.engine.name, config.engine.params) == expected
    reloaded = config_from_mapping(config.resolved())
    assert reloaded.engine == config.engine and reloaded.digest() == config.digest()


@pytest.mark.parametrize(
    ("overrides", "path", "reason"),
    [
        (["engine=warp"], "engine", "unknown engine 'warp'; known: local, ray"),
        (["engine=ray", "ray.adress=auto"], "engine.params.adress", "did you mean 'address'?"),
        (
            ["engine={name: ray, params: {spread: maybe}}"],
            "engine.params.spread",
            "valid boolean",
        ),
    ],
)
def test_engine_params_are_checked_by_the_engine(tmp_config, overrides, path, reason) -> None:
    with pytest.raises(ConfigError) as info:
        check_config(config_from_mapping(tmp_config(), overrides))
    assert info.value.path == path
    assert reason in info.value.reason


def test_reading_a_config_loads_no_registry_ray_or_model_stack() -> None:
    script = (
        "import sys, sandbox.config; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('ray', 'langgraph', 'openai', 'agents') or m.startswith('sandbox.engines')))"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("path", sorted((REPO / "configs").rglob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_and_checks(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every config under configs/ is valid against the schema and the registries (the hosted
    and local-model ones too, given their key variables: nothing is called until a run)."""
    from sandbox.run.checks import check_config

    for name in ("OPENAI_API_KEY", "LLAMA_KEY"):
        monkeypatch.setenv(name, "unused")
    assert check_config(load_config(path)).models


@pytest.mark.parametrize(
    ("protocol", "monitor", "expected"),
    [
        ("untrusted_monitoring", None, "untrusted"),
        ("trusted_monitoring", None, "trusted"),
        ("untrusted_monitoring", "untrusted", "untrusted"),
        ("defer_to_trusted", "untrusted", "untrusted"),
    ],
)
def test_a_protocol_alone_selects_its_own_monitor(
    tmp_config, protocol: str, monitor: str | None, expected: str
) -> None:
    """`control.protocol=untrusted_monitoring` needs no `control.monitor=untrusted`: an unset
    monitor is the protocol's default, and stays so through the run's own config; a monitor
    given is kept."""
    data = yaml.safe_load((REPO / "configs" / "deployment.yaml").read_text())
    data["control"].pop("monitor", None)
    overrides = [f"control.protocol={protocol}"]
    if monitor is not None:
        overrides.append(f"control.monitor={monitor}")
    from sandbox.run.checks import control_monitor

    config = check_config(config_from_mapping(data, overrides))
    assert config.control is not None
    assert control_monitor(config.control).name == expected
    reloaded = config_from_mapping(config.resolved())  # as a resume reads it
    assert reloaded.digest() == config.digest()
    assert reloaded.control is not None and control_monitor(reloaded.control).name == expected


def test_a_monitor_a_protocol_cannot_use_is_still_refused(tmp_config) -> None:
    data = yaml.safe_load((REPO / "configs" / "deployment.yaml").read_text())
    with pytest.raises(ConfigError) as info:
        check_config(
            config_from_mapping(
                data, ["control.protocol=untrusted_monitoring", "control.monitor=trusted"]
            )
        )
    assert info.value.path == "control.monitor"
