"""The deployment files agree with the code: pins cover setup.cfg, commands parse, variables exist, docs are current."""

from __future__ import annotations

import configparser
import http.server
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from engine.cli import _parser
from engine.config import _VARIABLES

ROOT = Path(__file__).parents[1]


def setup_requirements() -> list[Requirement]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config["options"]["install_requires"].splitlines() + config["options.extras_require"]["dev"].splitlines()
    return [Requirement(line) for line in lines if line.strip()]


def pins() -> dict[str, str]:
    found = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version.strip(), f"constraints.txt: {line!r} is not NAME==VERSION"
            found[canonicalize_name(name)] = version.strip()
    return found


def test_constraints_pin_every_requirement_at_a_version_setup_cfg_allows():
    pinned = pins()
    for requirement in setup_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement.name} is in setup.cfg but not pinned: run make upgrade"
        assert requirement.specifier.contains(pinned[name], prereleases=True), \
            f"constraints.txt pins {name}=={pinned[name]}, outside setup.cfg's {requirement}"
    assert "tutor-quality" not in pinned


def shell_words(command: str, **env: str) -> list[str]:
    """``command`` as sh would split it, with ``env`` as its only variables."""
    script = f"set -- {command}; for word in \"$@\"; do printf '%s\\n' \"$word\"; done"
    result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


def deploy_commands() -> list[tuple[str, str, dict[str, str]]]:
    """(where, command line, the variables it is expanded with) for every command the deployment files run."""
    commands = []
    for line in (ROOT / "Procfile").read_text().splitlines():
        kind, _, command = line.partition(":")
        commands.append((f"Procfile {kind}", command.strip(), {"PORT": "8000"}))
    for service in yaml.safe_load((ROOT / "render.yaml").read_text())["services"]:
        for field in ("dockerCommand", "preDeployCommand"):
            if field in service:
                commands.append((f"render.yaml {service['name']} {field}", service[field], {}))
    cmd = re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    shell, flag, command = json.loads(cmd[1])
    assert (shell, flag) == ("sh", "-c") and command.startswith("exec ")
    commands.append(("Dockerfile CMD", command.removeprefix("exec "), {"PORT": "8000"}))
    commands.append(("Dockerfile CMD with WEB_CONCURRENCY", command.removeprefix("exec "),
                     {"PORT": "8000", "WEB_CONCURRENCY": "3"}))
    return commands


@pytest.mark.parametrize(("where", "command", "env"), deploy_commands(), ids=lambda value: str(value)[:40])
def test_every_deploy_command_is_one_tqs_accepts(where, command, env):
    program, *argv = shell_words(command, **env)
    assert program == "tqs", where
    try:
        _parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: tqs rejects {argv}")


def test_render_blueprint_names_only_resources_it_declares_and_variables_the_code_reads():
    blueprint = yaml.safe_load((ROOT / "render.yaml").read_text())
    databases = {database["name"] for database in blueprint["databases"]}
    services = {(service["type"], service["name"]) for service in blueprint["services"]}
    groups = {group["name"]: group["envVars"] for group in blueprint["envVarGroups"]}
    shell_only = {"PORT", "WEB_CONCURRENCY"}
    for service in [s for s in blueprint["services"] if "envVars" in s]:
        variables = set()
        for variable in service["envVars"]:
            if "fromGroup" in variable:
                assert variable["fromGroup"] in groups
                variables |= {entry["key"] for entry in groups[variable["fromGroup"]]}
                continue
            variables.add(variable["key"])
            if "fromDatabase" in variable:
                assert variable["fromDatabase"]["name"] in databases
            if "fromService" in variable:
                assert (variable["fromService"]["type"], variable["fromService"]["name"]) in services
        assert variables - shell_only <= set(_VARIABLES), service["name"]
        assert {"TQS_DATABASE_URL", "TQS_QUEUE_URL", "TQS_SECRET_KEY"} <= variables, service["name"]
    assert {entry["key"] for entry in groups["tutor-quality-secrets"]} >= {"TQS_SECRET_KEY", "TQS_DASHBOARD_PASSWORD"}
    assert all(entry.get("generateValue") for entry in groups["tutor-quality-secrets"])


def test_deploy_doc_describes_every_variable_the_code_reads():
    text = (ROOT / "docs" / "deploy.md").read_text()
    missing = [name for name in _VARIABLES if f"`{name}`" not in text]
    assert not missing, f"docs/deploy.md does not describe {missing}"


def test_rails_doc_shows_the_example_files_as_they_are():
    shown = re.findall(r"```ruby\n(.*?)```", (ROOT / "docs" / "rails.md").read_text(), re.DOTALL)
    files = {path.read_text() for path in (ROOT / "clients" / "ruby").rglob("*.rb")}
    assert shown and all(block in files for block in shown)


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        self.send_response(self.status if self.path == "/api/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_the_image_healthcheck_passes_only_when_api_health_answers_200(status, healthy):
    check = json.loads(re.search(r"^\s*CMD (\[.*\])$", (ROOT / "Dockerfile").read_text().split("HEALTHCHECK")[1],
                                 re.MULTILINE)[1])
    assert check[0] == "python"
    handler = type("Handler", (_Health,), {"status": status})
    with http.server.HTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        result = subprocess.run([sys.executable, *check[1:]], env={"PORT": str(server.server_port)},
                                capture_output=True, timeout=10)
        server.shutdown()
    assert (result.returncode == 0) is healthy, result.stderr
