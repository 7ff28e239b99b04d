"""The argument checks and keyword plumbing that the modules taking user input share.

Each check raises the package's own errors (`keras_effnet.errors`), whose message names the
value and what is accepted; they are also ValueError / TypeError. Pure standard library.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import warnings
from typing import Any, Iterable

from keras_effnet.errors import InvalidArgument, InvalidType


def is_int(value: Any) -> bool:
    """An integer, and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A real number (integers included), and not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(label: str, value: Any, low: int, where: str = "") -> None:
    """Refuse `value` unless an integer >= `low`; `where` prefixes the message."""
    if not is_int(value) or value < low:
        raise InvalidArgument(f"{where}{label}={value!r}; accepted: an integer >= {low}")


def check_positive(label: str, value: Any, accepted: str | None = None,
                   above: float = 0.0) -> None:
    """Refuse `value` unless a finite real number > `above` (a multiplier, a coefficient)."""
    if not is_real(value) or not math.isfinite(value) or value <= above:
        raise InvalidArgument(f"{label}={value!r}; accepted: "
                              f"{accepted or f'a finite number > {above:g}'}")


def check_fraction(label: str, value: Any, low_open: bool = False, where: str = "") -> None:
    """Refuse `value` unless a real number in [0, 1) (a rate), or in (0, 1) with `low_open`
    (a batch-norm momentum)."""
    if not is_real(value) or not (0 < value if low_open else 0 <= value) or value >= 1:
        raise InvalidArgument(f"{where}{label}={value!r}; accepted: a number in "
                              f"{'(' if low_open else '['}0, 1)")


def nearest(value: Any, accepted: Iterable[str], cutoff: float = 0.4) -> str | None:
    """The accepted name closest to `value`, for a "did you mean" hint; None if none is."""
    found = difflib.get_close_matches(str(value), list(accepted), n=1, cutoff=cutoff)
    return found[0] if found else None


def renamed_argument(old: str, old_value: Any, new: str, new_value: Any, default: Any,
                     note: str = "same meaning") -> Any:
    """The value of argument `new`, taking a deprecated `old` name's value when given (with a
    DeprecationWarning naming `new` and `note`; both at once is refused). Old names keep
    working for one release."""
    if old_value is None:
        return new_value
    if new_value != default:
        raise InvalidArgument(f"pass {new}= only ({old}= is its deprecated name); got both")
    warnings.warn(f"{old}= is deprecated; use {new}= ({note})", DeprecationWarning,
                  stacklevel=3)
    return old_value


def fold_keywords(kind: type, given: Any, keywords: dict[str, Any], label: str) -> Any:
    """A settings object (`kind`, a dataclass) from `given` or from the keywords that name its
    fields, which are taken out of `keywords`: the grouped arguments of `build` and
    `search.coefficients` stay callable with today's flat keywords. Both at once is refused."""
    names = {f.name for f in dataclasses.fields(kind)}
    mine = {k: keywords.pop(k) for k in list(keywords) if k in names}
    if given is None:
        return kind(**mine)
    if not isinstance(given, kind):
        raise InvalidType(f"{label}={given!r}; accepted: a {kind.__name__}")
    if mine:
        raise InvalidArgument(f"pass {', '.join(sorted(mine))} inside {label}= or as "
                              "keywords, not both")
    return given


def refuse_unknown(function: str, keywords: dict[str, Any], accepted: Iterable[str]) -> None:
    """Python's own error for unknown keywords, with what is accepted and the nearest name."""
    if keywords:
        accepted = sorted(accepted)
        near = [nearest(k, accepted, cutoff=0.6) for k in sorted(keywords)]
        hint = "".join(f" (did you mean {m!r}?)" for m in near if m)
        raise InvalidType(f"{function}() got unexpected keyword(s) {sorted(keywords)}{hint}; "
                          f"accepted: {', '.join(accepted)}")
