"""Settings come from the environment and .env, typed; a bad value says which variable is wrong."""

from __future__ import annotations

import pytest

from kpi_lib import config


@pytest.fixture()
def fresh(monkeypatch, tmp_path):
    """Settings read in an empty folder (no .env) with none of our variables set."""
    for var in (
        "SMTP_PORT",
        "SMTP_TLS",
        "KPI_ALLOWED_HOSTS",
        "KPI_PUBLIC_URL",
        "KPI_TIMEZONE",
        "KPI_LOG_LEVEL",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    config.reset()
    yield tmp_path
    config.reset()


def test_defaults_and_types(fresh):
    s = config.settings()
    assert s.smtp_port == 8025 and s.smtp_tls == "none" and s.timezone == "UTC"
    assert s.allowed_hosts == () and s.home.is_absolute()


def test_dotenv_is_read_and_the_environment_wins(fresh, monkeypatch):
    (fresh / ".env").write_text('SMTP_PORT=2525\nKPI_TIMEZONE="Europe/Berlin"\n# a comment\n')
    monkeypatch.setenv("KPI_TIMEZONE", "Asia/Tokyo")
    s = config.settings()
    assert s.smtp_port == 2525 and s.timezone == "Asia/Tokyo"


def test_lists_cases_and_empty_values(fresh, monkeypatch):
    monkeypatch.setenv("KPI_ALLOWED_HOSTS", " bi.example.com, ops.example.com ,")
    monkeypatch.setenv("SMTP_TLS", "STARTTLS")
    monkeypatch.setenv("KPI_PUBLIC_URL", "https://bi.example.com/")
    monkeypatch.setenv("SMTP_PORT", "")  # empty is "not set", as in most .env files
    s = config.settings()
    assert s.allowed_hosts == ("bi.example.com", "ops.example.com")
    assert s.smtp_tls == "starttls" and s.public_url == "https://bi.example.com" and s.smtp_port == 8025


def test_home_is_never_taken_from_the_shells_HOME(fresh, monkeypatch):
    monkeypatch.delenv("KPI_HOME", raising=False)
    monkeypatch.setenv("HOME", str(fresh))
    assert config.settings().home == config.PROJECT_ROOT / "var"


@pytest.mark.parametrize(
    ("var", "value", "says"),
    [("SMTP_PORT", "twenty-five", "SMTP_PORT='twenty-five'"), ("SMTP_TLS", "Maybe", "SMTP_TLS='maybe'")],
)
def test_a_bad_value_names_its_variable(fresh, monkeypatch, var, value, says):
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match="Bad setting") as exc:
        config.settings()
    assert says in str(exc.value)
