"""The CPU core hint: CPU training in fewer processes than usable cores says how to use them all."""
from __future__ import annotations

from dbnetpp.dist import cpu_cores_hint, usable_cores


def test_hint_only_when_cores_are_left_idle():
    cores = usable_cores()
    assert cores >= 1
    assert cpu_cores_hint("gpu", 1) == ""
    assert cpu_cores_hint("cpu", cores) == ""
    if cores > 1:
        hint = cpu_cores_hint("cpu", 1)
        assert f"--nproc_per_node {cores}" in hint and f"1 of {cores} cores" in hint
