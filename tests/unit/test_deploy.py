"""The deployment files name only real settings, commands, services and databases.

There is no Docker engine in the test environment, so docker-compose.yml, the Dockerfile and
the env examples are checked by reading them. The settings classes ignore unknown variables
(``extra="ignore"``), so a misspelt name would otherwise be noticed only in production.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr, ValidationError
from sqlalchemy.engine import make_url

from mandet.cli import _parser
from mandet.embedded import SERVICES
from shared.settings import DEV_PLACEHOLDER, SERVICE_SETTINGS, CommonSettings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
CONTAINERS: dict[str, dict[str, Any]] = COMPOSE["services"]
MANDET = {name: spec for name, spec in CONTAINERS.items() if "build" in spec}
ENV_EXAMPLES = ("prod.env.example", "scale-local.env.example", "embedded.env.example")
NOT_SETTINGS = {"prod.env.example": {"POSTGRES_PASSWORD"}}  # read by compose and postgres
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?+][^}]*)?\}")
REAL = {"MANDET_JWT_SECRET": "a-real-signing-key-" + "x" * 40,
        "INGEST_PSEUDONYM_KEY": "a-real-pseudonym-key-" + "y" * 40,
        "POSTGRES_PASSWORD": "pw"}

PREFIXES = {"mandet": CommonSettings} | dict(SERVICE_SETTINGS)


def _prefix(cls: type[CommonSettings]) -> str:
    return str(cls.model_config["env_prefix"]).upper()


def setting_names() -> set[str]:
    """Every variable a settings class reads: its prefix plus a field name."""
    return {_prefix(cls) + f.upper() for cls in PREFIXES.values() for f in cls.model_fields}


def own_fields(cls: type[CommonSettings]) -> set[str]:
    """Fields a class adds; the common ones are documented once, under ``MANDET_``."""
    inherited = set() if cls is CommonSettings else set(CommonSettings.model_fields)
    return set(cls.model_fields) - inherited


def documented_names() -> set[str]:
    return {_prefix(cls) + f.upper() for cls in PREFIXES.values() for f in own_fields(cls)}


def secret_names() -> set[str]:
    return {_prefix(cls) + f.upper() for cls in PREFIXES.values() for f in own_fields(cls)
            if cls.model_fields[f].annotation is SecretStr}


def environment(spec: dict[str, Any]) -> dict[str, str]:
    env = spec.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def env_file_keys(name: str) -> list[str]:
    """Keys set (``NAME=``) or documented as unset (``#NAME=``) in an env example."""
    text = (DEPLOY / name).read_text()
    return re.findall(r"^#?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE)


@functools.cache
def env_file_values(name: str) -> dict[str, str]:
    """The file as a shell sees it: ``set -a; . FILE`` (the README's way to load it)."""
    script = f'set -a; . "{DEPLOY / name}"; set +a; env -0'
    out = subprocess.run(["bash", "-c", script], env={"PATH": os.environ.get("PATH", "")},
                         check=True, capture_output=True, text=True).stdout
    pairs = dict(item.split("=", 1) for item in out.split("\0") if "=" in item)
    return {k: v for k, v in pairs.items() if k in set(env_file_keys(name))}


def interpolate(value: str) -> str:
    return INTERPOLATION.sub(lambda m: REAL[m.group(1)], value)


def parse(command: list[str]) -> argparse.Namespace:
    try:
        return _parser().parse_args(command)
    except SystemExit:
        pytest.fail(f"`mandet {' '.join(command)}` is not a valid mandet command")


def role_of(name: str) -> tuple[str, str]:
    """(command, service) a mandet container runs, e.g. ("serve", "ingest")."""
    command = MANDET[name]["command"]
    return command[0], parse(command).service


def depends_on(spec: dict[str, Any]) -> dict[str, str]:
    deps = spec.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {k: (v or {}).get("condition", "service_started") for k, v in deps.items()}


def test_compose_has_the_mandet_containers_it_should() -> None:
    assert set(MANDET) == {f"{role}{svc}{suffix}" for svc in SERVICES
                           for role, suffix in (("", "-api"), ("", "-worker"), ("migrate-", ""))}


@pytest.mark.parametrize("name", sorted(MANDET))
def test_compose_environment_names_only_real_settings(name: str) -> None:
    unknown = sorted(k for k in environment(MANDET[name]) if k.upper() not in setting_names())
    assert not unknown, f"{name}: not a setting: {unknown}"


@pytest.mark.parametrize("example", ENV_EXAMPLES)
def test_env_examples_name_only_real_settings(example: str) -> None:
    allowed = setting_names() | NOT_SETTINGS.get(example, set())
    unknown = sorted(k for k in env_file_keys(example) if k not in allowed)
    assert not unknown, f"{example}: not a setting: {unknown}"


@pytest.mark.parametrize("example", ["scale-local.env.example", "embedded.env.example"])
def test_env_examples_document_every_setting(example: str) -> None:
    missing = sorted(documented_names() - set(env_file_keys(example)))
    assert not missing, f"{example}: undocumented: {missing}"


def test_prod_env_example_holds_every_secret_and_no_value() -> None:
    values = env_file_values("prod.env.example")
    assert secret_names() <= set(values)
    assert all(v == "" for v in values.values()), "the example must not carry secret values"


@pytest.mark.parametrize("name", sorted(MANDET))
def test_every_command_is_a_real_cli_subcommand_for_a_real_service(name: str) -> None:
    spec = MANDET[name]
    assert isinstance(spec["command"], list), "exec form: the entrypoint is mandet"
    command, service = role_of(name)
    assert command in {"serve", "worker", "migrate"}
    assert service in SERVICES
    assert name in {f"{service}-api", f"{service}-worker", f"migrate-{service}"}
    assert (command == "serve") == name.endswith("-api")


@pytest.mark.parametrize("service", SERVICES)
def test_apis_run_no_relay_and_no_consumers(service: str) -> None:
    env = environment(MANDET[f"{service}-api"])
    prefix = f"{service.upper()}_"
    assert env[prefix + "RUN_RELAY"] == "false"
    assert env[prefix + "RUN_CONSUMERS"] == "false"


def test_apis_have_their_own_host_ports_and_a_health_check() -> None:
    ports = {}
    for service in SERVICES:
        spec = MANDET[f"{service}-api"]
        args = parse(spec["command"])
        (mapping,) = spec["ports"]
        host_port, container_port = mapping.split(":")[-2:]
        assert int(container_port) == args.port
        assert "/healthz" in " ".join(spec["healthcheck"]["test"])
        ports[service] = int(host_port)
    assert sorted(ports.values()) == [8001, 8002, 8003, 8004]


@pytest.mark.parametrize("name", sorted(CONTAINERS))
def test_depends_on_targets_exist_and_can_satisfy_their_condition(name: str) -> None:
    for target, condition in depends_on(CONTAINERS[name]).items():
        assert target in CONTAINERS, f"{name} depends on missing {target}"
        if condition == "service_healthy":
            assert "healthcheck" in CONTAINERS[target], f"{target} has no healthcheck"
        if condition == "service_completed_successfully":
            assert CONTAINERS[target].get("restart") == "no", f"{target} is not one-shot"


@pytest.mark.parametrize("service", SERVICES)
def test_workers_wait_for_migrations_database_and_broker_apis_not_for_the_broker(
        service: str) -> None:
    migrated = {f"migrate-{service}": "service_completed_successfully"}
    assert depends_on(MANDET[f"{service}-worker"]) == {
        "postgres": "service_healthy", "kafka": "service_healthy", **migrated}
    assert depends_on(MANDET[f"{service}-api"]) == {"postgres": "service_healthy", **migrated}


def created_databases() -> set[str]:
    sql = (DEPLOY / "postgres-init.sql").read_text()
    return set(re.findall(r"^CREATE DATABASE (\w+);", sql, flags=re.MULTILINE))


@pytest.mark.parametrize("name", sorted(MANDET))
def test_each_service_uses_its_own_database_created_by_the_init_script(name: str) -> None:
    _, service = role_of(name)
    env = environment(MANDET[name])
    urls = {k: v for k, v in env.items() if k.endswith("_DATABASE_URL")}
    assert list(urls) == [f"{service.upper()}_DATABASE_URL"], f"{name}: {sorted(urls)}"
    url = make_url(interpolate(urls[f"{service.upper()}_DATABASE_URL"]))
    assert (url.drivername, url.host, url.port) == ("postgresql+asyncpg", "postgres", 5432)
    assert url.database == f"mandet_{service}", f"{name}: {url.database}"
    assert url.database in created_databases()


def test_scale_local_example_uses_the_init_script_databases() -> None:
    values = env_file_values("scale-local.env.example")
    for service in SERVICES:
        url = make_url(values[f"{service.upper()}_DATABASE_URL"])
        assert url.database == f"mandet_{service}" and url.database in created_databases()


def test_init_script_creates_one_database_per_service() -> None:
    assert created_databases() == {f"mandet_{s}" for s in SERVICES}


def test_postgres_runs_the_init_script() -> None:
    mounts = CONTAINERS["postgres"]["volumes"]
    assert any(m.startswith("./deploy/postgres-init.sql:/docker-entrypoint-initdb.d/")
               for m in mounts)


@pytest.mark.parametrize("name", sorted(CONTAINERS))
def test_no_secret_value_is_written_in_compose(name: str) -> None:
    spec = CONTAINERS[name]
    for key, value in environment(spec).items():
        assert key.upper() not in secret_names(), f"{name}: {key} belongs in deploy/prod.env"
        if re.search(r"SECRET|PASSWORD|TOKEN|_KEY$", key.upper()):
            assert INTERPOLATION.fullmatch(value), f"{name}: {key} is written out"
        if key.endswith("_DATABASE_URL"):
            assert INTERPOLATION.fullmatch(make_url(value).password or ""), f"{name}: {key}"
    if name in MANDET:
        assert spec["env_file"] == ["deploy/prod.env"]


def test_kafka_clients_reach_the_advertised_listener() -> None:
    kafka = environment(CONTAINERS["kafka"])
    for name in MANDET:
        bootstrap = environment(MANDET[name]).get("MANDET_KAFKA_BOOTSTRAP")
        if environment(MANDET[name]).get("MANDET_BUS") == "kafka":
            assert f"PLAINTEXT://{bootstrap}" in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert kafka["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"  # one broker


@pytest.mark.parametrize("name", sorted(MANDET))
def test_compose_environment_loads_as_production_settings(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    command, service = role_of(name)
    _clean_environment(monkeypatch)
    for key, value in {**environment(MANDET[name]), **REAL}.items():
        monkeypatch.setenv(key, interpolate(value))
    settings = load_settings(service)
    assert settings.env == "prod"
    assert settings.bus == "kafka"
    assert settings.database_url_for(service).endswith(f"@postgres:5432/mandet_{service}")
    assert settings.run_relay is settings.run_consumers is (command != "serve")


def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    prefixes = tuple(_prefix(cls) for cls in PREFIXES.values())
    for key in [k for k in os.environ if k.upper().startswith(prefixes)]:
        monkeypatch.delenv(key)


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("example", ["scale-local.env.example", "embedded.env.example"])
def test_env_examples_load_as_valid_settings(
    example: str, service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clean_environment(monkeypatch)
    for key, value in env_file_values(example).items():
        monkeypatch.setenv(key, REAL.get(key, value) if key in secret_names() else value)
    settings = load_settings(service)
    assert settings.bus == ("kafka" if example.startswith("scale") else "memory")
    if example.startswith("scale"):
        assert settings.database_url_for(service).endswith(f"/mandet_{service}")


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("secret", ["", DEV_PLACEHOLDER])
def test_prod_refuses_placeholder_secrets(
    service: str, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clean_environment(monkeypatch)
    monkeypatch.setenv("MANDET_ENV", "prod")
    for key in env_file_values("prod.env.example"):
        monkeypatch.setenv(key, secret)
    with pytest.raises(ValidationError, match="must be a real secret of at least 32 characters"):
        load_settings(service)


@pytest.mark.parametrize("service", SERVICES)
def test_prod_loads_with_real_secrets(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_environment(monkeypatch)
    monkeypatch.setenv("MANDET_ENV", "prod")
    for key, value in REAL.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(service)
    assert settings.jwt_secret.get_secret_value() == REAL["MANDET_JWT_SECRET"]
    if service == "ingest":
        assert settings.pseudonym_key.get_secret_value() == REAL["INGEST_PSEUDONYM_KEY"]


def dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text()


def test_dockerfile_entrypoint_is_mandet() -> None:
    (entrypoint,) = re.findall(r"^ENTRYPOINT (.+)$", dockerfile(), flags=re.MULTILINE)
    assert yaml.safe_load(entrypoint) == ["mandet"]


def test_image_runs_as_a_non_root_user_without_test_extras() -> None:
    text = dockerfile()
    users = re.findall(r"^USER (\S+)$", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)[-1] == "python:3.11-slim"
    assert "[test]" not in text and "[dev]" not in text


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", "allow-list: exclude everything, then let the packages in"
    assert {"!pyproject.toml", "!mandet/", "!shared/", "!services/"} <= set(rules)
    assert not any(rule.startswith("!") and ("deploy" in rule or "data" in rule)
                   for rule in rules)


def test_scale_commands_can_build_the_kafka_bus_outside_an_event_loop() -> None:
    """`mandet serve|worker|migrate` bootstrap a service before any event loop runs."""
    from shared.runtime import make_bus

    settings = load_settings("ingest", bus="kafka", kafka_bootstrap="127.0.0.1:1")
    assert make_bus(settings, client_id="mandet-ingest") is not None
