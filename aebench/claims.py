"""A tutorial's claims, checked against the numbers above them, at the reader's own settings.

A notebook's prose is a claim. :class:`Claims` checks each one and prints what holds and what
does not; it fails (``AssertionError``) only at a setting the tutorial was tested at, so a
reader who changes the seeds or the data size learns which claims hold there instead of
meeting a bare ``AssertionError``::

    claims = Claims(dict(SEEDS=SEEDS, WIDTH=WIDTH), tested=[dict(SEEDS=[0, 1, 2], WIDTH=256),
                                                          dict(SEEDS=[3, 4, 5], WIDTH=256)])
    claims.check("L needs twice J's gradient steps", (steps_l == 2 * steps_j).all())
    claims.check("J ahead on mnist-bg-rand", p < 0.05, f"p = {p:.3f}")
    claims.verify()   # prints one line per claim; raises at a tested setting if any failed
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Claims:
    """Claims checked at ``settings``; ``tested`` lists the settings at which every claim must hold."""

    settings: Mapping[str, Any]
    tested: Sequence[Mapping[str, Any]] = ()
    results: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def at_tested_setting(self) -> bool:
        """True when ``settings`` is one of ``tested`` (compared key by key, as Python values)."""
        return any(all(_same(self.settings.get(k), v) for k, v in t.items()) for t in self.tested)

    def check(self, claim: str, holds: Any, detail: str = "") -> bool:
        """Record one claim (``holds`` is read as a truth value) and return whether it held."""
        ok = bool(holds)
        self.results.append((claim, ok, detail))
        return ok

    def verify(self) -> list[str]:
        """Print each claim as holding or not at these settings; raise at a tested setting if one failed."""
        lines = [
            f"{'holds' if ok else 'DOES NOT HOLD at these settings'}: {claim}" + (f" ({detail})" if detail else "")
            for claim, ok, detail in self.results
        ]
        print("\n".join(lines))
        failed = [claim for claim, ok, _ in self.results if not ok]
        if failed and self.at_tested_setting:
            raise AssertionError(
                f"{len(failed)} claim(s) of this tutorial fail at a setting it was tested at "
                f"({dict(self.settings)}): " + "; ".join(failed)
            )
        if failed:
            print(f"{len(failed)} of {len(self.results)} claims do not hold at these settings (not a tested one).")
        self.results = []
        return lines


def _same(a: Any, b: Any) -> bool:
    """Equal as plain Python values (numpy arrays and tuples compared as lists)."""

    def plain(x: Any) -> Any:
        if hasattr(x, "tolist"):
            return x.tolist()
        if isinstance(x, tuple | list):
            return [plain(v) for v in x]
        return x

    return plain(a) == plain(b)
