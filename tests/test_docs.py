"""Docs that cannot drift: every hook and every parameter is documented with its signature, and the
examples are tested code."""

import inspect
import re
from pathlib import Path

import pytest

from engine import hookspecs
from engine.explanations import DECISIONS, EVIDENCE_DECISIONS, EVIDENCE_KEYS, KNOWN_KEYS

ROOT = Path(__file__).parent.parent
PLUGINS_DOC = (ROOT / "docs" / "plugins.md").read_text()
WRITING_DOC = (ROOT / "docs" / "writing-a-rule.md").read_text()


def hook_names() -> list[str]:
    return [name for name, value in vars(hookspecs).items()
            if callable(value) and hasattr(value, "tutor_quality_spec")]


def hook_section(name: str) -> str:
    parts = re.split(r"^### (\w+)$", PLUGINS_DOC, flags=re.MULTILINE)
    sections = dict(zip(parts[1::2], parts[2::2], strict=True))
    assert name in sections, f"docs/plugins.md has no section for the hook {name}"
    return sections[name].split("\n## ", 1)[0]


def documented_signature(name: str) -> str:
    """The hook as the docs should show it: ``def name(param: type, ...) -> type``."""
    signature = inspect.signature(getattr(hookspecs, name))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
    return f"def {name}({params}) -> {signature.return_annotation}"


def test_the_hooks_are_the_ones_documented_here():
    assert set(hook_names()) == {"describe_rule", "check_settings", "assess_tutor", "advise_tutor"}


@pytest.mark.parametrize("name", hook_names())
def test_every_hook_is_documented_with_its_exact_signature_and_every_parameter(name):
    section = hook_section(name)
    assert f"```python\n{documented_signature(name)}\n```" in section, documented_signature(name)
    for parameter in inspect.signature(getattr(hookspecs, name)).parameters:
        assert re.search(rf"^- `{parameter}`[:,]|`{parameter}` holds", section, flags=re.MULTILINE), (
            f"the {parameter} parameter of {name} is not described")


def test_the_docs_document_no_hook_that_does_not_exist():
    documented = set(re.findall(r"^### (\w+)$", PLUGINS_DOC, flags=re.MULTILINE))
    assert documented == set(hook_names())


@pytest.mark.parametrize("doc", ["plugins.md", "writing-a-rule.md"])
def test_examples_are_tested_files_verbatim(doc):
    text = (ROOT / "docs" / doc).read_text()
    for path, code in re.findall(r"<!-- example: (\S+) -->\n```python\n(.*?)```", text, flags=re.DOTALL):
        assert code == (ROOT / path).read_text(), f"{doc} shows an outdated {path}"


def test_the_walk_through_shows_the_rule_and_its_test():
    shown = re.findall(r"<!-- example: (\S+) -->", WRITING_DOC)
    assert shown == ["tests/outside_rule/tq_busy_week.py", "tests/outside_rule/test_tq_busy_week.py"]


def test_every_decision_the_dashboard_words_is_documented():
    section = PLUGINS_DOC.split("## What admins see of a rule", 1)[1].split("\n## ", 1)[0]
    assert all(f"`{decision}`" in section for decision in DECISIONS + EVIDENCE_DECISIONS)
    assert all(f"`{key}`" in section for key in (KNOWN_KEYS | EVIDENCE_KEYS) - {"rule", "rule_version"})


def test_every_name_engine_plugin_exports_is_mentioned_in_the_reference():
    from engine import plugin
    assert all(f"`{name}`" in PLUGINS_DOC for name in plugin.__all__), [
        name for name in plugin.__all__ if f"`{name}`" not in PLUGINS_DOC]


def test_the_rate_rule_on_the_walk_through_loads_and_flags_as_shown():
    import datetime as dt
    import types

    from engine.testing import completed, days, rescheduled, run_rule
    code = re.search(r"<!-- rate rule example -->\n```python\n(.*?)```", WRITING_DOC, flags=re.DOTALL).group(1)
    rule = types.ModuleType("student_moves")
    exec(compile(code, "docs/writing-a-rule.md", "exec"), rule.__dict__)  # noqa: S102 - our own doc's code
    now = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
    sessions = [completed(now - days(i)) for i in range(1, 7)] + [rescheduled(now - days(i), by="student")
                                                                   for i in (1.5, 2.5, 3.5, 4.5)]
    result = run_rule(rule, sessions, now)
    assert result.assessment.flagged and result.assessment.metrics["student_reschedule_rate_30d"] == 40.0
    assert not run_rule(rule, sessions, now, threshold=45, clear_threshold=40).assessment.flagged
    assert "`TQS_RULE_STUDENT_MOVES_THRESHOLD` (30)" in WRITING_DOC
