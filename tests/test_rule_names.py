"""No code outside a rule's own module names that rule: the engine, the API, the dashboard, the emails,
the CLI and the benchmarks know rules only through what they declare.

For every installed rule this collects what would give it away (its name, its metric names, its
rate's name, its variables and its module path) and greps every source file of the product for
them as whole words, except the rule's own module. The simulator is scanned too: it describes its
tutors in the engine's counting vocabulary (``tutor_reschedules``, ``no_shows``,
``poor_first_sessions``), and ``tqs evaluate`` matches a rule to that vocabulary through the
rule's declared rate, never by its name.
"""

import re
from pathlib import Path

import pytest

from engine.config import Settings
from engine.raterule import FLAG_POLICY_VARIABLE
from engine.registry import load_rules, setting_variable

ROOT = Path(__file__).parent.parent
PRODUCT = ("engine", "api", "dashboard", "notifications", "rules", "plugins", "simulator", "bench")
SUFFIXES = {".py", ".html", ".txt", ".js", ".css"}
RULES = load_rules(Settings())


def giveaways(name: str) -> set[str]:
    loaded = RULES.rules[name]
    words = {name, *loaded.info.metrics, loaded.module}
    if loaded.info.rate is not None:
        words.add(loaded.info.rate.name)
    for setting in loaded.info.settings:
        words.add(setting_variable(name, setting.name))
        words.update(alias for alias in setting.aliases if alias != FLAG_POLICY_VARIABLE)  # every rate rule's
    words.add(setting_variable(name, "weight"))
    return words


def own_files(name: str) -> set[Path]:
    module = RULES.rules[name].module.replace(".", "/")
    package = ROOT / module
    return set(package.rglob("*")) if package.is_dir() else {ROOT / f"{module}.py"}


def product_files() -> list[Path]:
    return sorted(path for top in PRODUCT for path in (ROOT / top).rglob("*")
                  if path.suffix in SUFFIXES and "__pycache__" not in path.parts)


def test_the_scan_covers_every_rule_and_real_files():
    assert set(RULES.names) >= {"reschedule_rate", "no_show_rate", "first_session"}
    assert len(product_files()) > 60


@pytest.mark.parametrize("rule", RULES.names)
def test_no_code_outside_the_rule_names_it(rule):
    pattern = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, sorted(giveaways(rule), key=len, reverse=True)))
                         + r")(?![\w])")
    found = []
    for path in product_files():
        if path in own_files(rule):
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            match = pattern.search(line)
            if match:
                found.append(f"{path.relative_to(ROOT)}:{number}: {match.group(1)}")
    assert not found, f"{rule} is named outside its module:\n" + "\n".join(found)


def test_the_scan_would_catch_a_rule_named_elsewhere():
    words = giveaways("reschedule_rate") | giveaways("first_session")
    assert {"reschedule_rate_30d", "rules.reschedule_rate", "TQS_RESCHEDULE_THRESHOLD",
            "TQS_RULE_FIRST_SESSION_THRESHOLD"} <= words
    pattern = re.compile(r"(?<!\w)(reschedule_rate_30d|reschedule_rate|first_session)(?!\w)")
    assert pattern.search('rate = tutor["reschedule_rate_30d"]')
    assert pattern.search("from rules import reschedule_rate")
    assert not pattern.search("is_first_session or first_session_no_shows")  # the engine's vocabulary
