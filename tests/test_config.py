from pathlib import Path

import pytest

import monitor.config as config_module
from monitor.config import Mode, Settings, load_settings
from monitor.errors import ConfigError


def test_settings_are_never_built_at_import() -> None:
    assert not any(isinstance(v, Settings) for v in vars(config_module).values())


def test_sqlite_in_the_data_directory_is_the_default(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.effective_database_url == f"sqlite:///{tmp_path.resolve()}/monitor.db"


def test_environment_variables_use_the_monitor_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_DATABASE_URL", "postgresql://u:p@db.example/monitor")
    monkeypatch.setenv("MONITOR_PORT", "9000")
    settings = load_settings()
    assert settings.effective_database_url == "postgresql+psycopg://u:p@db.example/monitor"
    assert settings.port == 9000


def test_a_config_file_is_read_and_the_environment_wins_over_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    file = tmp_path / "monitor.yaml"
    file.write_text("port: 8100\nprovince_prefix: LS\nsecret_key: from-the-file-0123456789\n", encoding="utf-8")
    monkeypatch.setenv("MONITOR_CONFIG_FILE", str(file))
    monkeypatch.setenv("MONITOR_PORT", "8200")
    settings = load_settings()
    assert settings.port == 8200
    assert settings.secret_key.get_secret_value() == "from-the-file-0123456789"


def test_a_missing_config_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MONITOR_CONFIG_FILE", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match=r"nope\.yaml, which is not a file"):
        load_settings()


def test_an_invalid_value_is_a_config_error_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="port"):
        load_settings(port=70000)


def test_production_refuses_placeholder_secrets_naming_each() -> None:
    settings = load_settings()
    with pytest.raises(ConfigError, match="MONITOR_SECRET_KEY"):
        settings.require_real_secrets()


def test_demo_mode_accepts_placeholder_secrets() -> None:
    load_settings(mode=Mode.DEMO).require_real_secrets()


def test_a_real_secret_is_accepted_and_never_printed() -> None:
    settings = load_settings(secret_key="a-long-random-secret-value")
    settings.require_real_secrets()
    assert "a-long-random-secret-value" not in repr(settings)
