"""docker-compose.yml and the Dockerfile: valid Compose, and in step with the launcher and core.settings.

No Docker engine is needed: the files are checked statically against the Compose Specification, the
local launcher's defaults (scripts/stack), the settings model, and the modules the commands run.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import sys
from importlib.machinery import SourceFileLoader
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

import reference
from core.settings import DatabaseSettings, KafkaSettings, Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
LAUNCHER = REPO_ROOT / "scripts" / "stack"
INFRASTRUCTURE = {"kafka", "postgres"}
APP_SERVICES = {"init", "api", "poller", "processor", "simulator"}
MODULE_RUN = re.compile(r"python -m ([A-Za-z_][\w.]*)")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml as Compose reads it (YAML anchors and merge keys resolved)."""
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services of the compose file by name."""
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    """The official Compose Specification schema (`reference/schemas/compose-spec.json`)."""
    schema: dict[str, Any] = json.loads(reference.COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    return schema


@pytest.fixture(scope="module")
def launcher_defaults() -> Any:
    """scripts/stack's configuration with none of its variables set: the ports it uses by default."""
    loader = SourceFileLoader("stack_launcher", str(LAUNCHER))
    spec = importlib.util.spec_from_loader("stack_launcher", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    with pytest.MonkeyPatch.context() as patch:
        # Its dataclasses look their module up in sys.modules while the module executes.
        patch.setitem(sys.modules, spec.name, module)
        loader.exec_module(module)
        for variable in ("KAFKA_PORT", "PG_PORT", "DATABASE_URL", "KAFKA_CONTROLLER_PORT", "KAFKA_VERSION"):
            patch.delenv(variable, raising=False)
        return module.load_config()


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, whichever of Compose's two forms it is written in."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return {name: value for name, _, value in (str(item).partition("=") for item in environment)}
    return {name: "" if value is None else str(value) for name, value in environment.items()}


def _published(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host_ip, published port, container port) for each port a service publishes."""
    published = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            published.append((str(port.get("host_ip", "")), int(port["published"]), int(port["target"])))
            continue
        parts = str(port).split(":")
        host_ip = parts[0] if len(parts) == 3 else ""
        published.append((host_ip, int(parts[-2]), int(parts[-1])))
    return published


def _command(service: dict[str, Any]) -> str:
    """A service's command as one shell-like string."""
    command = service.get("command", "")
    return command if isinstance(command, str) else shlex.join(command)


def _valid_variable_names() -> set[str]:
    """Every variable name Settings reads: `GROUP__FIELD` for nested groups, `FIELD` for top-level ones."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        group = field.annotation
        if isinstance(group, type) and issubclass(group, BaseModel):
            names.update(f"{name}__{member}".upper() for member in group.model_fields)
        else:
            names.add(name.upper())
    return names


def _settings_topic_names() -> set[str]:
    defaults = KafkaSettings()
    return {getattr(defaults, name) for name in KafkaSettings.model_fields if name.endswith("_topic")}


def test_compose_file_follows_the_compose_specification(
    compose: dict[str, Any], compose_schema: dict[str, Any]
) -> None:
    # The schema names draft-07 by an https URI that jsonschema's lookup does not know, so say it here.
    jsonschema.Draft7Validator.check_schema(compose_schema)
    validator = jsonschema.Draft7Validator(compose_schema)
    errors = sorted(validator.iter_errors(compose), key=lambda error: error.json_path)
    assert not errors, "\n".join(f"{error.json_path}: {error.message}" for error in errors)


def test_compose_schema_is_draft_07(compose_schema: dict[str, Any]) -> None:
    assert "draft-07" in compose_schema["$schema"]


def test_compose_runs_every_process_of_the_system(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == INFRASTRUCTURE | APP_SERVICES


def test_images_are_the_ones_the_launcher_runs(
    services: dict[str, dict[str, Any]], launcher_defaults: Any
) -> None:
    assert services["kafka"]["image"] == f"apache/kafka:{launcher_defaults.kafka_version}"
    assert services["postgres"]["image"].startswith("postgres:")


def test_kafka_is_published_on_the_launchers_port_on_loopback(
    services: dict[str, dict[str, Any]], launcher_defaults: Any
) -> None:
    published = _published(services["kafka"])
    assert [(ip, port) for ip, port, _ in published] == [("127.0.0.1", launcher_defaults.kafka_port)]
    # The host listener must advertise the address the host dials, or clients follow metadata elsewhere.
    advertised = _environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    assert f"127.0.0.1:{launcher_defaults.kafka_port}" in advertised
    assert "kafka:9092" in advertised


def test_postgres_is_published_on_the_launchers_port_on_loopback(
    services: dict[str, dict[str, Any]], launcher_defaults: Any
) -> None:
    published = _published(services["postgres"])
    assert [(ip, port) for ip, port, _ in published] == [("127.0.0.1", launcher_defaults.db_port)]


def test_every_published_port_is_on_loopback(services: dict[str, dict[str, Any]]) -> None:
    exposed = {name: ip for name, service in services.items() for ip, _, _ in _published(service)}
    assert exposed
    assert set(exposed.values()) == {"127.0.0.1"}, exposed


def test_database_name_and_user_match_the_settings_and_the_launcher(
    services: dict[str, dict[str, Any]], launcher_defaults: Any
) -> None:
    default_url = urlsplit(DatabaseSettings().url.get_secret_value())
    expected_name, expected_user = default_url.path.lstrip("/"), default_url.username
    postgres = _environment(services["postgres"])
    assert (postgres["POSTGRES_DB"], postgres["POSTGRES_USER"]) == (expected_name, expected_user)
    assert (launcher_defaults.db_name, launcher_defaults.db_user) == (expected_name, expected_user)
    for name in APP_SERVICES - {"simulator"}:
        url = urlsplit(_environment(services[name])["DATABASE__URL"])
        assert (url.hostname, url.port) == ("postgres", 5432), name
        assert (url.path.lstrip("/"), url.username, url.password) == (
            expected_name,
            expected_user,
            postgres["POSTGRES_PASSWORD"],
        ), name


def test_app_services_reach_kafka_and_the_simulator_by_service_name(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in APP_SERVICES - {"simulator"}:
        environment = _environment(services[name])
        assert environment["KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092", name
        assert environment["ALLEGRO__API_URL"] == "http://simulator:8080", name
        assert environment["ALLEGRO__AUTH_URL"] == "http://simulator:8080", name
    assert "--port 8080" in _command(services["simulator"])


def test_init_migrates_then_creates_topics_once_both_servers_are_healthy(
    services: dict[str, dict[str, Any]],
) -> None:
    init = services["init"]
    command = _command(init)
    assert command.index("python -m db upgrade") < command.index("python -m core.topics")
    assert init["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }
    assert "test" in services["kafka"]["healthcheck"]
    assert "test" in services["postgres"]["healthcheck"]


def test_app_processes_start_after_init_succeeds(services: dict[str, dict[str, Any]]) -> None:
    for name in APP_SERVICES - {"init"}:
        assert services[name]["depends_on"] == {"init": {"condition": "service_completed_successfully"}}, name


def test_every_app_service_uses_the_same_build(services: dict[str, dict[str, Any]]) -> None:
    builds = {name: json.dumps(services[name].get("build"), sort_keys=True) for name in APP_SERVICES}
    assert len(set(builds.values())) == 1, builds
    assert services["api"]["build"] == "."


def test_app_environment_names_are_real_settings_fields(services: dict[str, dict[str, Any]]) -> None:
    valid = _valid_variable_names()
    for name in APP_SERVICES:
        unknown = set(_environment(services[name])) - valid
        assert not unknown, f"{name} sets variables core.settings never reads: {sorted(unknown)}"


def test_topic_names_come_only_from_the_settings(services: dict[str, dict[str, Any]]) -> None:
    defaults = KafkaSettings()
    for name in APP_SERVICES:
        for variable, value in _environment(services[name]).items():
            if variable.startswith("KAFKA__") and variable.endswith("_TOPIC"):
                field = variable.removeprefix("KAFKA__").lower()
                assert value == getattr(defaults, field), f"{name} renames topic {field}"
    mentioned = set(re.findall(r"allegro\.[a-z][a-z.-]*[a-z]", COMPOSE_FILE.read_text(encoding="utf-8")))
    assert mentioned <= _settings_topic_names()


def _runnable_module_names() -> list[str]:
    """Every `python -m X` the Dockerfile and the compose file run."""
    texts = [DOCKERFILE.read_text(encoding="utf-8")]
    compose: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    texts += [_command(service) for service in compose["services"].values()]
    return sorted({module for text in texts for module in MODULE_RUN.findall(text)})


def test_dockerfile_and_compose_run_the_expected_modules() -> None:
    assert _runnable_module_names() == sorted(
        ["api", "core.topics", "db", "processors", "producers", "simulator"]
    )


def test_dockerfile_sets_only_real_settings_fields() -> None:
    names = set(re.findall(r"\b([A-Z][A-Z0-9_]*__[A-Z0-9_]+)=", DOCKERFILE.read_text(encoding="utf-8")))
    assert names
    assert names <= _valid_variable_names()


def test_dockerfile_runs_as_a_non_root_user_without_dev_extras() -> None:
    instructions = [line.split(maxsplit=1) for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()]
    instructions = [parts for parts in instructions if parts and not parts[0].startswith("#")]
    assert instructions[0] == ["FROM", "python:3.11-slim"]
    users = [parts[1].strip() for parts in instructions if parts[0] == "USER"]
    assert users and users[-1] not in {"root", "0"}
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "pip install -c constraints.txt ." in text
    assert "[dev]" not in text


@pytest.mark.parametrize("module", _runnable_module_names())
def test_every_module_the_image_runs_exists(module: str) -> None:
    package = module.split(".", 1)[0]
    if not (REPO_ROOT / package / "__init__.py").exists():
        pytest.skip(f"package {package}/ is not written yet")
    spec = importlib.util.find_spec(module)
    assert spec is not None, f"{module} does not exist"
    if spec.submodule_search_locations is not None:
        main = importlib.util.find_spec(f"{module}.__main__")
        assert main is not None, (
            f"the image runs `python -m {module}` but {package}/__main__.py does not exist"
        )
