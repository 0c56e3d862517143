"""Which episodes a run plays, and when a game has been sampled enough (`sampling.stopping`).

`fixed` plays every game's `k` episodes. `adaptive` plays a game for one model (a *cell*) in
rounds of `sampling.round` episodes; after each round the game's `sequential_reading` (an
anytime-valid confidence sequence for what its verdict reads, `control.metrics.sequential`) says
whether the verdict is settled, and the cell stops when it is, or when its `k_max` is spent
(then it reads inconclusive). A game with no sequential reading (a sweep, the SB games) is
played to its k, and a deployment's steps in full.

The sequence is deterministic: the first round of every cell is queued in plan order (then the
deployment's steps), and a cell's next round is queued, at the end, when the last episode of its
round is committed. Episodes are committed strictly in queue order, so the queue (and with it
`results.jsonl`) is a function of the config and seed alone, however the engine schedules
work; a resumed run walks it again, taking committed episodes from their records
(`Sequencer.resume`), and a replay asks the same episodes, answered from its source's record.

Pure and single-threaded: the runner feeds it committed records in order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from sandbox.config import Config
from sandbox.core.episode import EpisodeSpec
from sandbox.core.events import EpisodeRecord, Record
from sandbox.core.results import CellStopping, Stopping
from sandbox.environments import Environment
from sandbox.environments.base import SequentialReading

StopReason = Literal["settled", "k_max", "fixed"]

INCONCLUSIVE = "inconclusive"


def collect_samples(
    env: Environment, records: Iterable[EpisodeRecord]
) -> dict[str, list[str | None]]:
    """Each observation's recorded choices in episode order (None for a failed parse): what
    scoring and the stopping rules read of a game's records."""
    samples: dict[str, list[str | None]] = {o.id: [] for o in env.observations()}
    for record in sorted(records, key=lambda r: r.index):
        for s in record.samples:
            samples[s.observation].append(s.choice)
    return samples


def alpha_of(config: Config) -> float:
    """The error rate a settled verdict keeps: 1 - `sampling.confidence`."""
    return 1.0 - config.sampling.confidence


@dataclass(slots=True)
class Cell:
    """One game for one model under adaptive sampling: its episodes so far and its budget."""

    model: str
    game: str
    env: Environment
    k_max: int
    adaptive: bool
    scheduled: int = 0
    records: list[EpisodeRecord] = field(default_factory=list)
    reading: SequentialReading | None = None
    stopped: StopReason | None = None


def cell_k_max(config: Config, game_id: str, env: Environment) -> int:
    """A game's episode budget per model: for a game adaptive sampling stops, its `k_max`,
    else `sampling.k_max`, else its k; for any other game, its k."""
    game = next(g for g in config.games if g.game_id == game_id)
    k = game.k or config.sampling.k
    if config.sampling.stopping == "adaptive" and env.stops_early():
        return game.k_max or config.sampling.k_max or k
    return k


def final_reading(
    config: Config, env: Environment, records: Sequence[EpisodeRecord]
) -> SequentialReading | None:
    """What the stopping rule read at a cell's last round: the game's sequential reading of
    all its records (None for a game adaptive sampling does not stop)."""
    if config.sampling.stopping != "adaptive" or not env.stops_early():
        return None
    return env.sequential_reading(
        collect_samples(env, records), alpha_of(config), config.report.xc_threshold
    )


def stopping_summary(
    config: Config,
    envs: Mapping[str, Environment],
    records: Mapping[tuple[str, str], Sequence[EpisodeRecord]],
    readings: Mapping[tuple[str, str], SequentialReading | None],
) -> Stopping | None:
    """Each cell's stopping (`CellStopping`) and the totals, from the cells' records and
    their `final_reading`s (pure: what the sequencer decided, recomputed); None for a fixed
    run."""
    if config.sampling.stopping != "adaptive":
        return None
    cells = []
    for model in config.models:
        for game in config.games:
            env = envs[game.game_id]
            own = records.get((model, game.game_id), ())
            k_max = cell_k_max(config, game.game_id, env)
            reading = readings[(model, game.game_id)]
            if reading is None:
                stopped: StopReason = "fixed"
            else:
                stopped = "settled" if reading.verdict is not None else "k_max"
            cells.append(
                CellStopping(
                    model=model,
                    game=game.game_id,
                    episodes=len(own),
                    k_max=k_max,
                    contexts=sum(len(r.samples) for r in own),
                    contexts_k_max=k_max * len(env.observations()),
                    stopped=stopped,
                    verdict=None if reading is None else reading.verdict or INCONCLUSIVE,
                    statistic=None if reading is None else reading.statistic,
                    low=None if reading is None else reading.low,
                    high=None if reading is None else reading.high,
                )
            )
    contexts = sum(c.contexts for c in cells)
    most = sum(c.contexts_k_max for c in cells)
    fixed = sum(
        (game.k or config.sampling.k) * len(envs[game.game_id].observations())
        for game in config.games
    ) * len(config.models)
    return Stopping(
        alpha=alpha_of(config),
        round=config.sampling.round,
        cells=cells,
        contexts=contexts,
        contexts_k_max=most,
        contexts_fixed=fixed,
        saved=1.0 - contexts / most if most else 0.0,
    )


class Sequencer:
    """The run's episodes in commit order, fixed or adaptive (see the module docstring).

    `first()` is the queue a run starts from; `committed(record)` takes each record in commit
    order and returns the episodes to queue after it (a cell's next round, or none)."""

    def __init__(self, config: Config, envs: Mapping[str, Environment]) -> None:
        self.config = config
        self.adaptive = config.sampling.stopping == "adaptive"
        self.alpha = alpha_of(config)
        self.threshold = config.report.xc_threshold
        self.cells: dict[tuple[str, str], Cell] = {}
        for model in config.models:
            for game in config.games:
                env = envs[game.game_id]
                adaptive = self.adaptive and env.stops_early()
                k = cell_k_max(config, game.game_id, env)
                self.cells[(model, game.game_id)] = Cell(model, game.game_id, env, k, adaptive)

    def first(self) -> list[EpisodeSpec]:
        """Every cell's first round (all of a fixed cell), per model in game order, then the
        deployment's steps (calibration, honest, attack). Once per sequencer: it schedules
        those rounds."""
        if any(cell.scheduled for cell in self.cells.values()):
            raise RuntimeError("a sequencer starts its sequence once (first() was called)")
        plan: list[EpisodeSpec] = []
        for model in self.config.models:
            for game in self.config.games:
                cell = self.cells[(model, game.game_id)]
                plan += self._round(cell)
            if self.config.control is not None:
                steps = 3 * self.config.control.steps
                plan += [EpisodeSpec(model, self.config.control.id, i) for i in range(steps)]
        return plan

    def _round(self, cell: Cell) -> list[EpisodeSpec]:
        size = self.config.sampling.round if cell.adaptive else cell.k_max
        end = min(cell.scheduled + size, cell.k_max)
        specs = [EpisodeSpec(cell.model, cell.game, i) for i in range(cell.scheduled, end)]
        cell.scheduled = end
        return specs

    def committed(self, record: Record) -> list[EpisodeSpec]:
        """Take one committed record (in commit order); the episodes to queue after it."""
        cell = self.cells.get((record.model, record.game))
        if cell is None or not isinstance(record, EpisodeRecord):
            return []  # a deployment's step
        cell.records.append(record)
        if len(cell.records) < cell.scheduled:
            return []
        if not cell.adaptive:
            cell.stopped = "fixed"
            return []
        cell.reading = cell.env.sequential_reading(
            collect_samples(cell.env, cell.records), self.alpha, self.threshold
        )
        if cell.reading is not None and cell.reading.verdict is not None:
            cell.stopped = "settled"
            return []
        if cell.scheduled >= cell.k_max:
            cell.stopped = "k_max"
            return []
        return self._round(cell)

    def resume(
        self, done: Sequence[Record]
    ) -> tuple[list[EpisodeSpec], deque[EpisodeSpec], dict[str, Record]]:
        """A fresh sequencer fed a stopped run's committed records: (the episodes committed in
        sequence up to the first one missing, the queue from there, the committed records
        still ahead in it). A resume re-asks the episodes a stop un-committed (an error
        outcome), so the committed records need not be a prefix: the runner walks the queue,
        taking a record where there is one (`Runner._run_episodes`), and a record the walk
        never reaches (a cell that now settles sooner) is dropped at the end
        (`RunStore.in_order`). Raises ValueError for a record no sequence of this config could
        hold (an unknown game or model, an index past its budget)."""
        steps = 3 * self.config.control.steps if self.config.control is not None else 0
        for record in done:
            cell = self.cells.get((record.model, record.game))
            if cell is not None:
                budget = cell.k_max
            elif self.config.control is not None and record.game == self.config.control.id:
                budget = steps
            else:
                budget = 0
            if not 0 <= record.index < budget or record.model not in self.config.models:
                raise ValueError(
                    f"committed episode {record.episode_id} is not in this run's sequence "
                    "(an unknown model or game, or past its budget): the run's config or "
                    "results.jsonl changed"
                )
        ahead = {r.episode_id: r for r in done}
        queue = deque(self.first())
        order: list[EpisodeSpec] = []
        while queue and queue[0].episode_id in ahead:
            spec = queue.popleft()
            order.append(spec)
            queue.extend(self.committed(ahead.pop(spec.episode_id)))
        return order, queue, ahead

    @property
    def most(self) -> int:
        """The most episodes the run can play (every cell at its `k_max`): the progress total
        until cells stop."""
        steps = 3 * self.config.control.steps if self.config.control is not None else 0
        return sum(c.k_max for c in self.cells.values()) + steps * len(self.config.models)

    def total(self) -> int:
        """The most episodes the run can commit now, stopped cells counted at what they played:
        the progress display's total."""
        return self.most - sum(
            c.k_max - len(c.records) for c in self.cells.values() if c.stopped is not None
        )
