"""Docs that cannot drift: every hook is documented, and the plugin example is tested code."""

import re
from pathlib import Path

from engine import hookspecs
from engine.explanations import DECISIONS, KNOWN_KEYS

ROOT = Path(__file__).parent.parent
PLUGINS_DOC = (ROOT / "docs" / "plugins.md").read_text()


def hook_names() -> list[str]:
    return [name for name, value in vars(hookspecs).items()
            if callable(value) and hasattr(value, "tutor_quality_spec")]


def test_there_are_hooks_to_document():
    assert set(hook_names()) == {"describe_rule", "assess_tutor", "advise_tutor"}


def test_every_hook_has_a_section_in_the_plugin_docs():
    documented = set(re.findall(r"^### (\w+)$", PLUGINS_DOC, flags=re.MULTILINE))
    assert set(hook_names()) <= documented, set(hook_names()) - documented


def test_plugin_example_is_the_tested_sample_plugin_verbatim():
    match = re.search(r"<!-- example: (\S+) -->\n```python\n(.*?)```", PLUGINS_DOC, flags=re.DOTALL)
    assert match, "docs/plugins.md lost its example block"
    assert match.group(2) == (ROOT / match.group(1)).read_text()


def test_every_decision_the_dashboard_words_is_documented():
    section = PLUGINS_DOC.split("## What admins see of a rule", 1)[1].split("\n## ", 1)[0]
    assert all(f"`{decision}`" in section for decision in DECISIONS)
    assert all(f"`{key}`" in section for key in KNOWN_KEYS - {"rule", "rule_version"})
