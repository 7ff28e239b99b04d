"""The points step 1 of the compound-scaling search trains (`keras_effnet.search`): candidates
(α, β, γ), the paper's kind of grid kept by *measured* MACs, the reference rows, and the
settings objects `SearchSpace` (which points) and `ProxyTraining` (how each is trained).
Pure Python: `profile` counts each network after every rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from keras_effnet.checks import check_positive, is_int, is_real
from keras_effnet.errors import InvalidArgument
from keras_effnet.profile import profile
from keras_effnet.scaling import ALPHA, BETA, GAMMA, ModelConfig, scale

PAPER = (ALPHA, BETA, GAMMA)
ROLES = ("paper", "depth", "width", "resolution")  # the reference rows, always evaluated


@dataclass(frozen=True)
class Candidate:
    """A point (α, β, γ); `role` is "candidate" or one of the reference rows."""

    alpha: float
    beta: float
    gamma: float
    role: str = "candidate"

    @property
    def key(self) -> str:
        return f"a{self.alpha:.4g}-b{self.beta:.4g}-g{self.gamma:.4g}"

    def config(self, base: Any, resolution: int | None = None, phi: float = 1.0) -> ModelConfig:
        """The network at `phi` (1: the search's doubling) from the base at `resolution`."""
        return scale(base=base, base_resolution=resolution, depth=self.alpha ** phi,
                     width=self.beta ** phi, resolution_multiplier=self.gamma ** phi)


def macs_multiplier(base: Any, point: Sequence[float], resolution: int | None = None) -> float:
    """Measured MACs of the point's network over the base's (φ = 0), after all rounding."""
    anchor = profile(scale(phi=0, base=base, base_resolution=resolution)).macs
    return profile(Candidate(*point).config(base, resolution)).macs / anchor


def grid(base: Any = "efficientnet", *, target: float = 2.0, tolerance: float = 0.15,
         step: float = 0.05, upper: float | None = None, resolution: int | None = None,
         max_points: int | None = None) -> list[Candidate]:
    """The paper's kind of grid: α, β, γ from 1 on a `step`, α ≤ `upper` (default: the target)
    and β, γ ≤ √upper, kept where the measured MACs multiplier is within `tolerance`
    (relative) of `target`, one point per distinct network after rounding; nearest the
    paper's (1.2, 1.1, 1.15) first."""
    check_positive("target", target, above=1.0)
    check_positive("tolerance", tolerance)
    check_positive("step", step)
    upper = target if upper is None else upper
    check_positive("upper", upper, above=1.0)
    if max_points is not None and (not isinstance(max_points, int) or max_points < 1):
        raise InvalidArgument(f"max_points={max_points!r}; accepted: None or an integer >= 1")
    anchor = profile(scale(phi=0, base=base, base_resolution=resolution)).macs

    def axis(limit: float) -> list[float]:
        return [round(1 + i * step, 6) for i in range(int((limit - 1) / step + 1e-9) + 1)]

    points, networks = [], {}
    for a in axis(upper):
        for b in axis(math.sqrt(upper)):
            for g in axis(math.sqrt(upper)):
                if abs(a * b * b * g * g / target - 1) > 3 * tolerance:  # cheap pre-filter
                    continue
                point = Candidate(a, b, g)
                config = point.config(base, resolution)
                ratio = profile(config).macs / anchor
                if abs(ratio / target - 1) <= tolerance:
                    points.append(point)
                    networks[point] = (config.resolution, config.stem_filters,
                                       config.head_filters, config.stages)
    if not points:
        raise InvalidArgument(f"no grid point (step {step}, up to {upper}) has a measured MACs "
                              f"multiplier within {tolerance:.0%} of {target}: widen the tolerance "
                              "or refine the step")
    points.sort(key=lambda p: math.dist((p.alpha, p.beta, p.gamma), PAPER))
    # Points that round to the same network (same repeats, channels and resolution) would
    # train it again: keep the one nearest the paper's.
    seen: set = set()
    unique = [p for p in points if not (networks[p] in seen or seen.add(networks[p]))]
    return unique[:max_points]


def references(base: Any, *, target: float = 2.0, resolution: int | None = None
               ) -> list[Candidate]:
    """The paper's point and depth-, width- and resolution-only points whose measured MACs
    multiplier is nearest `target`."""
    found = [Candidate(*PAPER, role="paper")]
    for index, role in enumerate(ROLES[1:]):
        best = None
        for i in range(1, 400):  # multipliers 1.01 … 4.99, measured
            value = 1 + i / 100
            point = [1.0, 1.0, 1.0]
            point[index] = value
            try:
                ratio = macs_multiplier(base, point, resolution)
            except ValueError:
                break
            if best is None or abs(ratio - target) < abs(best[0] - target):
                best = (ratio, value)
            if ratio > 1.5 * target:
                break
        point = [1.0, 1.0, 1.0]
        point[index] = best[1]
        found.append(Candidate(*point, role=role))
    return found


def _parse_points(points: Iterable[Any]) -> list[Candidate]:
    result = []
    for item in points:
        values = item.split(",") if isinstance(item, str) else list(item)
        try:
            a, b, g = (float(v) for v in values)
        except (TypeError, ValueError):
            raise InvalidArgument(f"point {item!r}; accepted: three numbers alpha, beta, gamma "
                                  "(e.g. '1.2,1.1,1.15')") from None
        if min(a, b, g) < 1 or not all(math.isfinite(v) for v in (a, b, g)):
            raise InvalidArgument(f"point {item!r}: alpha, beta, gamma must be finite and >= 1")
        result.append(Candidate(a, b, g))
    if not result:
        raise InvalidArgument("points: an empty list; give at least one alpha,beta,gamma triple")
    return result


@dataclass(frozen=True)
class SearchSpace:
    """Which points step 1 trains. With `sampler="grid"`: the grid's `max_trials` points
    nearest the paper's whose measured MACs multiplier lies within `tolerance` of `target`
    (see `grid`), or the explicit `points`; with `sampler="tpe"`: `max_trials` points drawn by
    Optuna's TPE sampler from the continuous box α ≤ target, β, γ ≤ √target, kept where the
    measured MACs fit.

    The default tolerance is 15 %: after rounding, the paper's own point measures 1.78× B0's
    MACs (1.92× nominal), 11 % under the target of 2.
    """

    target: float = 2.0
    tolerance: float = 0.15
    step: float = 0.05
    max_trials: int | None = 8
    sampler: str = "grid"
    points: tuple[Candidate, ...] | None = None

    def __post_init__(self) -> None:
        check_positive("target", self.target, above=1.0)
        check_positive("tolerance", self.tolerance)
        check_positive("step", self.step)
        if self.sampler not in ("grid", "tpe"):
            raise InvalidArgument(f"sampler={self.sampler!r}; accepted: 'grid' or 'tpe'")
        if self.max_trials is not None and not _is_count(self.max_trials):
            raise InvalidArgument(f"max_trials={self.max_trials!r}; accepted: None or an "
                                  "integer >= 1")
        if self.sampler == "tpe" and (self.points is not None or self.max_trials is None):
            raise InvalidArgument("sampler='tpe' draws its own points: give max_trials >= 1, "
                                  "no points")
        if self.points is not None:
            object.__setattr__(self, "points", tuple(_parse_points(self.points)))

    def candidates(self, base: Any, resolution: int) -> list[Candidate]:
        """The grid's points (or the given ones) after the reference rows, each distinct
        network once; every point is built (a clear error otherwise). TPE draws later."""
        points = [] if self.sampler == "tpe" else list(self.points or grid(
            base, target=self.target, tolerance=self.tolerance, step=self.step,
            resolution=resolution, max_points=self.max_trials))
        for point in points:
            point.config(base, resolution)
        rows = references(base, target=self.target, resolution=resolution)
        keys = {c.key for c in rows}
        return rows + [c for c in points if c.key not in keys]


@dataclass(frozen=True)
class ProxyTraining:
    """How each candidate is trained (the search's proxy, as `Recipe` is a full training's):
    `seeds` trainings of `epochs` epochs at `resolution` (None: the base's), ranked by their
    mean validation top-1."""

    seeds: int = 2
    epochs: int = 5
    resolution: int | None = None
    batch_size: int = 64
    recipe: str = "short"
    strategy: str = "auto"

    def __post_init__(self) -> None:
        for name in ("seeds", "epochs", "batch_size"):
            if not _is_count(getattr(self, name)):
                raise InvalidArgument(f"{name}={getattr(self, name)!r}; accepted: an integer >= 1")


def _is_count(value: Any) -> bool:
    return is_int(value) and value >= 1
