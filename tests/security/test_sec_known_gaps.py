"""Known gaps, kept honest: attacks that still work under capimport today.

Each test here *asserts that the attack succeeds* under ``python -m capimport``
so that docs/threat-model.md's "open" column is backed by evidence, and so
that whoever closes a gap is told to move it to the closed column (the test
then fails and must be rewritten as a test that the act has no effect).
"""

from __future__ import annotations

import os

from sechelp import ATTEMPT, Scenario, ok, results

CONFIG = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = ["fs-readonly"]\n'


def _scenario(tmp_path, code):
    return Scenario(tmp_path, config=CONFIG, app="import evil\nevil.run()\n",
                    dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})


def test_gap_rebinding_capimports_own_classes_disables_enforcement(tmp_path):
    """Open (route 7): class attributes and instance state of capimport's enforcer are plain Python objects.

    Setting a class attribute raises no audit event, so a distribution that
    imports ``capimport.enforcer`` can replace ``Enforcer.decide``. Closing it
    needs the decision core to hold its state and functions where package code
    cannot rebind them (a native hook, or closures over generator vaults as the
    guards use); see docs/threat-model.md.
    """
    marker = tmp_path / "written"
    code = f'''
def run():
    import capimport.enforcer as enforcer
    enforcer.Enforcer.decide = lambda *args, **kwargs: None
    attempt("write", lambda: open({str(marker)!r}, "w").close())
    report()
'''
    scenario = _scenario(tmp_path, code)
    guarded = results(scenario.guarded())
    assert ok(guarded["write"]) and marker.exists(), guarded
