"""docker-compose.yml is read, never run here: check it says what a deployment needs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_runs_api_worker_postgres_and_redis():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"api", "worker", "postgres", "redis"} <= set(services)
    api = services["api"]
    assert api["command"][:2] == ["rabta", "serve"]
    assert services["worker"]["command"] == ["rabta", "worker"]
    env = api["environment"]
    assert env["RABTA_ENV"] == "production"
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert env["REDIS_URL"].startswith("redis://redis:")
    required_vars = ("RABTA_SECRET_KEY", "PUBLIC_BASE_URL")
    # Twilio's three: without any one, outbound would fall back to a file (production refuses).
    twilio = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM")
    for required in required_vars + twilio:
        assert ":?" in env[required], f"{required} must be required, not defaulted"
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["redis"]
    assert "/readyz" in " ".join(api["healthcheck"]["test"])


def test_dockerfile_builds_what_compose_runs():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for folder in ("api", "bot", "templates", "locales"):
        assert f"COPY {folder} ./{folder}" in dockerfile
    # Both gettext domains the app reads: the bot's and the agent console's.
    assert "pybabel compile --domain messages" in dockerfile
    assert "locales/agent/*/LC_MESSAGES/agent.po" in dockerfile
    assert "pybabel compile --domain agent" in dockerfile
    assert "USER rabta" in dockerfile


def test_the_build_context_leaves_out_secrets_and_personal_data():
    """`docker build` sends the whole folder to the daemon: the `.env` with the production
    secrets, registry extracts and local databases must not go with it (nor into a layer)."""
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", "extract/", "var/", ".venv/", ".git/"} <= ignored
    # What the Dockerfile copies is not ignored.
    for folder in ("api", "bot", "templates", "locales"):
        assert not {folder, f"{folder}/"} & ignored


def test_compose_runs_api_replicas_behind_one_address():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    api, lb = services["api"], services["lb"]
    # Replicas cannot share a host port: only the load balancer publishes one.
    assert "ports" not in api and "8000" in [str(p) for p in api["expose"]]
    assert str(api["deploy"]["replicas"]).startswith("${RABTA_API_REPLICAS:-")
    assert lb["ports"] == ["8000:8000"]
    assert lb["depends_on"]["api"]["condition"] == "service_healthy"
    # nginx resolves `api` when it starts: recreated replicas (new code) have new addresses.
    assert lb["depends_on"]["api"]["restart"] is True
    nginx = compose["configs"][lb["configs"][0]["source"]]["content"]
    assert "server api:8000;" in nginx
    # The client IP the per-IP limits see is the one the load balancer saw, not a forged one.
    assert "X-Forwarded-For $$remote_addr" in nginx
    assert api["environment"]["FORWARDED_ALLOW_IPS"] == "*"
    assert api["environment"]["PROMETHEUS_MULTIPROC_DIR"] in api["tmpfs"]


def _setting_names() -> set[str]:
    """Every variable Rabta reads its configuration from."""
    from api.programmes import ProgrammesSettings
    from api.settings import Settings
    from api.surge import SurgeSettings

    models = (Settings, SurgeSettings, ProgrammesSettings)
    return {field.alias for model in models for field in model.model_fields.values() if field.alias}


def test_every_setting_reaches_the_api_and_the_worker():
    """A setting the docs tell an operator to use (a read replica, the surge knobs, the limits)
    has no effect unless compose passes it into the containers."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    names = _setting_names()
    assert {"REGISTRY_DATABASE_URL", "RABTA_SURGE_MAX_IN_FLIGHT", "RABTA_PROGRAMMES_FILE"} <= names
    for service in ("api", "worker"):
        env = services[service]["environment"]
        assert names - set(env) == set(), f"{service} never receives these"
        # Unset stays unset (Rabta's default), never "" (a refused RABTA_OUTBOUND, an empty limit).
        empty_defaults = [name for name, value in env.items() if str(value).endswith(":-}")]
        assert empty_defaults == []


def test_the_readme_names_every_setting():
    """The README's configuration table is where a newcomer looks for what can be set."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    table = "\n".join(line for line in section.splitlines() if line.startswith("| `"))
    missing = {
        name
        for name in _setting_names()
        if f"`{name}`" not in table
        and not (name.startswith("RABTA_SURGE_") and "`RABTA_SURGE_*`" in table)
    }
    assert missing == set()


@pytest.mark.parametrize(("args", "port"), [([], "8000"), (["PORT=8001"], "8001")])
def test_make_run_serves_on_the_port_asked_for(args, port):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dry_run = subprocess.run(
        ["make", "-n", "run", *args], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert f"rabta serve --demo --port {port}" in dry_run.stdout


def test_make_help_lists_every_target_the_readme_names():
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    named = set(re.findall(r"`make ([a-z-]+)", (ROOT / "README.md").read_text()))
    assert {"run", "test", "test-fast", "lint"} <= named
    shown = subprocess.run(
        ["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    listed = {line.split()[1] for line in shown.splitlines() if line.startswith("make ")}
    assert named - listed == set()


def test_the_extract_readme_imports_is_mounted_in_the_api():
    """README's deploy step imports /data/extract inside `api`: compose must put it there."""
    api = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["api"]
    assert "./extract:/data/extract:ro" in api["volumes"]
    assert (
        "docker compose exec api rabta registry import /data/extract"
        in (ROOT / "README.md").read_text()
    )


def _nginx_locations(nginx: str) -> dict[str, str]:
    """Each `location` block of the load balancer's server, by what follows the word."""
    return {
        match.group(1).strip(): match.group(2)
        for match in re.finditer(r"location\s+([^{]+)\{([^}]*)\}", nginx)
    }


def test_the_load_balancer_keeps_metrics_from_the_internet():
    """`lb` publishes port 8000 to the world (Twilio, Telegram and partners call it); `/metrics`
    names partners, counts traffic and queries the outbox on every scrape, and the docs say to
    scrape each replica directly, so the load balancer does not pass it on."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    nginx = compose["configs"][compose["services"]["lb"]["configs"][0]["source"]]["content"]
    locations = _nginx_locations(nginx)
    # `^~`: a prefix match that wins over any regular expression, `/metrics/` and
    # `/metrics?…` included (nginx matches the decoded, slash-merged path).
    assert "^~ /metrics" in locations, locations
    refused = locations["^~ /metrics"]
    assert "proxy_pass" not in refused and re.search(r"return\s+404;|deny\s+all;", refused)
    # Everything else still goes to the replicas.
    assert "proxy_pass http://rabta_api;" in locations["/"]
