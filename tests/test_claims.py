"""The tutorials' claim checker: says what holds at the reader's setting, fails only at a tested one."""

from __future__ import annotations

import numpy as np
import pytest

from aebench.claims import Claims

TESTED = [{"SEEDS": [0, 1, 2], "SUBSET": 1000}, {"SEEDS": [3, 4, 5], "SUBSET": 1000}]


def test_a_failed_claim_at_a_tested_setting_fails_naming_it(capsys):
    claims = Claims({"SEEDS": np.array([3, 4, 5]), "SUBSET": 1000}, TESTED)  # numpy values compare as lists
    claims.check("steps double", True)
    claims.check("J ahead on bg-rand", False, "p = 0.20")
    with pytest.raises(AssertionError, match="J ahead on bg-rand"):
        claims.verify()
    out = capsys.readouterr().out
    assert "holds: steps double" in out and "DOES NOT HOLD at these settings: J ahead on bg-rand (p = 0.20)" in out


def test_at_another_setting_a_failed_claim_is_said_not_raised(capsys):
    claims = Claims({"SEEDS": [7, 8], "SUBSET": 1000}, TESTED)
    assert not claims.at_tested_setting
    claims.check("J ahead on bg-rand", False)
    claims.verify()
    assert "1 of 1 claims do not hold at these settings (not a tested one)" in capsys.readouterr().out
    claims.check("all good", True)  # a new group of claims starts empty
    assert claims.verify() == ["holds: all good"]
