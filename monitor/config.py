"""Settings, read from the environment (prefix `MONITOR_`) and an optional YAML file.

Built by `load_settings()`, never at import: tests and each process build their own.
Priority, highest first: arguments given to `load_settings`, environment variables, the file named
by `MONITOR_CONFIG_FILE`, then the defaults below.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from monitor.errors import ConfigError

#: Values that mean "nobody set this": refused outside demo mode.
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "demo"})
CONFIG_FILE_VARIABLE = "MONITOR_CONFIG_FILE"
SECRET_KEYS_VARIABLE = "MONITOR_SECRET_KEYS"
MAKE_A_SECRET_KEY = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
MONTH_DAY = r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"  # MM-DD, a day of every year


class Mode(StrEnum):
    """How the process runs: `demo` accepts placeholder secrets, `production` refuses them."""

    PRODUCTION = "production"
    DEMO = "demo"


class Settings(BaseSettings):
    """Everything a process of the service can be told."""

    model_config = SettingsConfigDict(env_prefix="MONITOR_", extra="forbid", validate_default=True)

    mode: Mode = Mode.PRODUCTION
    data_dir: Path = Field(default=Path("data"), description="folder for the SQLite database and uploads")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file monitor.db in data_dir"
    )
    secret_key: SecretStr = Field(default=SecretStr("change-me"), description="signs sessions and tokens")
    # Stored secrets are sealed under these (monitor/sealing.py): a new key goes first, the old one stays until
    # `monitor secrets rotate` has re-sealed everything. Comma-separated in the environment, a list in the file.
    secret_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Fernet keys sealing the stored secrets (channels' secrets, SNMP credentials), newest first; "
        "none: secrets are refused outside the demo",
    )
    province: str = Field(default="lang-son", description="province whose administrative units are used")
    province_prefix: str = Field(default="LS", description="prefix of ticket codes (LS-2026-000123)")
    timezone: str = Field(default="Asia/Ho_Chi_Minh", description="time zone shown to people")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    database_pool_size: int = Field(default=10, ge=1)

    database_pool_timeout_s: float = Field(
        default=2.0, gt=0, le=60, description="how long a request waits for a free database connection before a 503"
    )

    cookie_secure: bool = Field(default=True, description="send the session cookie over HTTPS only")
    session_hours: float = Field(default=12, gt=0, le=24 * 30)
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="the address people open the service at (https://giamsat.example.vn), for links in notifications",
    )
    map_tile_url: str | None = Field(
        default=None,
        description="map tiles for /map, e.g. a tile server of your own: https://tiles.example.vn/{z}/{x}/{y}.png "
        "(none by default: the points and commune outlines still show)",
    )
    # --- accounts (monitor/auth/) ---
    # Sign-in throttling (monitor/auth/throttle.py): by (name, address) pair and by address, never by name alone.
    login_free_failures: int = Field(
        default=5, ge=1, le=100, description="wrong passwords of one name from one address before that pair must wait"
    )
    login_first_delay_s: float = Field(
        default=2, gt=0, le=3600, description="the pair's first wait; it doubles with each further failure"
    )
    login_max_delay_s: float = Field(
        default=900, gt=0, le=86400, description="the longest a (name, address) pair is refused at a time"
    )
    login_failure_half_life_s: float = Field(
        default=3600, gt=0, le=7 * 86400, description="a pair's count of failures halves over this much quiet"
    )
    login_address_max_names: int = Field(
        default=20, ge=2, le=10000, description="different names failing from one address before it is refused"
    )
    login_address_window_s: float = Field(
        default=900, gt=0, le=86400, description="the sliding window of login_address_max_names"
    )

    # --- the web process under load and abuse ---
    # Few threads: CPython runs one at a time, and every SQLite call hands the interpreter lock over, so on
    # SQLite more threads cost more CPU per request (bench/bench_api.py: 1 thread 3.7 ms, 8 threads 5.8 ms, 40
    # threads 6.4 ms for a district's queue under 50 clients). PostgreSQL waits on the network, so a few more
    # help, but not many: its queue under 50 clients did 306-319 req/s with 8 threads a worker, 357-375 with 4,
    # 4.7-4.9 ms of CPU a request against 4.3-4.5 (bench/bench_api_pg.py --threads, alternating runs).
    web_threads: int | None = Field(
        default=None, ge=1, le=1000, description="threads for the requests' database work (default: SQLite 2, else 4)"
    )
    web_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="web processes sharing the port (`monitor serve`); about one per core beside the database",
    )
    web_overview_max_age_s: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="the overview's figures are shared per district scope for this long (0: built per request)",
    )
    web_max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="largest request body (JSON, forms); 413 beyond, before parsing"
    )
    web_max_upload_bytes: int = Field(
        default=12 * 1024 * 1024, ge=1024, description="largest body of an upload (photos, fleet files)"
    )
    web_access_log: bool = Field(
        default=True,
        description="a line per request in the log (uvicorn's access log); false behind a balancer that logs them "
        "(bench/bench_api_pg.py: 3-5 % of a kept queue's CPU)",
    )
    web_header_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="a client must send its request line and headers within this"
    )
    web_body_idle_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="a client sending its body may pause at most this long"
    )
    web_body_timeout_s: float = Field(
        default=60.0, gt=0, le=3600, description="a whole request body must arrive within this (uploads: 5 times)"
    )
    web_client_max_receiving: int = Field(
        default=16, ge=1, description="requests of one address that may be sending their bodies at once"
    )
    web_client_max_active: int | None = Field(
        default=None,
        ge=1,
        description="requests of one address worked on at once, more wait their turn (default: half the threads)",
    )
    web_queue_timeout_s: float = Field(
        default=5.0, gt=0, le=120, description="how long a request waits its turn (its address's share) before a 503"
    )
    web_max_connections: int = Field(default=2000, ge=10, description="open connections before new ones get a 503")
    shutdown_timeout_s: float = Field(
        default=8.0, gt=0, le=60, description="after SIGTERM, the process ends within this whatever it is doing"
    )

    # --- alerts and tickets ---
    alertmanager_token: SecretStr | None = Field(
        default=None, description="bearer token Alertmanager sends to /api/v1/integrations/alertmanager"
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="bearer token Prometheus must send to /metrics (web and collectors); unset: /metrics is open",
    )
    alert_rules_file: Path | None = Field(default=None, description="YAML overriding the alert rules")
    tickets_auto_resolve: bool = Field(default=True, description="a recovery resolves its automatic ticket")
    tickets_reopen_window_h: float = Field(default=24, ge=0)
    tickets_close_delay_h: float = Field(default=72, ge=0)
    tickets_working_hours: bool = Field(default=False, description="count SLA clocks in working hours only")

    notify_interval_s: float = Field(default=5, gt=0, description="how often queued notifications are sent")
    notify_max_attempts: int = Field(default=5, ge=1)
    notify_backoff_s: float = Field(default=30, gt=0, description="first retry delay; doubles each time")
    notify_max_backoff_s: float = Field(default=3600, gt=0)
    notify_digest_items: int = Field(default=20, ge=1, description="events listed in a digest before 'and N more'")
    notify_concurrency: int = Field(default=10, ge=1)
    notify_retention_days: int = Field(default=90, ge=1, description="sent and failed deliveries kept this long")

    # --- reports ---
    report_exclude_maintenance: bool = Field(
        default=True, description="time inside maintenance windows is reported apart and left out of availability"
    )
    report_rollup_every_s: float = Field(
        default=60, gt=0, description="how often state changes are laid into spans and finished days rolled up"
    )
    report_rollup_lag_s: float = Field(
        default=300, ge=0, description="a day is rolled up this long after it ended (late heartbeats, flushes)"
    )
    # The yearly review of the stations and the budget basis (monitor/reports/review.py).
    report_replace_after_years: int = Field(
        default=8, ge=1, le=50, description="a device older than this is flagged for replacement"
    )
    report_replace_after_repairs: int = Field(
        default=3, ge=1, le=100, description="a device repaired more often than this in the period is flagged"
    )
    report_replace_below_availability: float = Field(
        default=0.95, gt=0, le=1, description="a device less available than this over the period is flagged"
    )
    report_costs_file: Path | None = Field(
        default=None,
        description="YAML of unit costs for the next year's estimate (default: examples/report-costs.yaml's values)",
    )
    # The plan's annual results report (monitor/reports/annual.py).
    report_period_start: str = Field(
        default="01-01",
        pattern=MONTH_DAY,
        description="MM-DD the reporting year starts on; 12-15 counts from 15 December of the year before",
    )
    report_district_due: str = Field(default="12-15", pattern=MONTH_DAY, description="districts report by (MM-DD)")
    report_province_due: str = Field(default="12-20", pattern=MONTH_DAY, description="the province reports by")
    report_reminder_days: int = Field(
        default=5, ge=0, le=60, description="remind the districts and the province this many days before each due date"
    )
    report_place: str = Field(default="Lạng Sơn", max_length=60, description="place in the report's date line")
    report_province_parent: str = Field(default="UBND TỈNH LẠNG SƠN", max_length=120)
    report_province_body: str = Field(default="SỞ VĂN HÓA, THỂ THAO VÀ DU LỊCH", max_length=120)
    report_province_symbol: str = Field(default="SVHTTDL", max_length=20, description="Số: …/BC-SVHTTDL")
    report_district_body: str = Field(default="PHÒNG VĂN HÓA VÀ THÔNG TIN", max_length=120)
    report_district_symbol: str = Field(default="VHTT", max_length=20, description="Số: …/BC-VHTT")
    report_province_signer: str = Field(default="GIÁM ĐỐC", max_length=60, description="signer's title, province")
    report_district_signer: str = Field(default="TRƯỞNG PHÒNG", max_length=60, description="signer's title, district")
    report_province_recipients: list[str] = Field(
        default=["Bộ Văn hóa, Thể thao và Du lịch (b/c)", "UBND tỉnh (b/c)", "UBND các huyện, thành phố", "Lưu: VT"],
        description="the province report's 'Nơi nhận', one line each",
    )
    report_district_recipients: list[str] = Field(
        default=["Sở Văn hóa, Thể thao và Du lịch (b/c)", "UBND huyện (b/c)", "Lưu: VT"],
        description="a district report's 'Nơi nhận', one line each",
    )

    # --- collection ---
    profiles_dir: Path | None = Field(default=None, description="folder of the operator's own device profiles")
    mqtt_url: str | None = Field(
        default=None, description="MQTT broker the 4G devices publish to, mqtt://host:port (demo: embedded)"
    )
    mqtt_topic_filter: str = Field(default="#", description="topics to subscribe to for device heartbeats")
    mqtt_keepalive_s: int = Field(
        default=30, ge=1, le=600, description="MQTT keepalive: a dead broker connection is noticed within twice this"
    )
    mqtt_backoff_initial_s: float = Field(
        default=0.5, gt=0, le=60, description="first wait before reconnecting to the MQTT broker, doubled each attempt"
    )
    mqtt_backoff_max_s: float = Field(
        default=30.0, gt=0, le=300, description="longest wait between attempts to reach the MQTT broker (with jitter)"
    )
    poll_concurrency: int = Field(default=1000, ge=1, description="polls in flight at once, per collector")
    poll_slots: int = Field(default=60, ge=1, le=3600, description="phases an interval is spread over")
    http_timeout_s: float = Field(default=5.0, gt=0, le=60)
    http_max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    snmp_timeout_s: float = Field(default=2.0, gt=0, le=30)
    snmp_retries: int = Field(default=1, ge=0, le=5)
    snmp_trap_port: int | None = Field(default=None, ge=1, le=65535, description="listen for SNMP traps here")
    failures_to_down: int = Field(default=3, ge=1, le=100)
    successes_to_up: int = Field(default=2, ge=1, le=100)
    heartbeat_grace_s: float = Field(default=30.0, ge=0)
    heartbeat_max_bytes: int = Field(default=64 * 1024, ge=1024)

    # --- the collectors' pool (PostgreSQL): leased shards, see monitor.health.leases ---
    collector_shards: int = Field(
        default=64,
        ge=1,
        le=4096,
        description="shards of the fleet in the collectors' pool (the same for every collector)",
    )
    collector_lease_s: float = Field(
        default=15.0,
        ge=3,
        le=600,
        description="a collector's lease of its shards, renewed every third; a lapsed one is taken over",
    )

    # --- the collector watching itself: its own stalls are never the devices' fault ---
    collector_stall_s: float = Field(
        default=2.0,
        gt=0,
        description="event-loop lag or poll-slot lateness counted as the collector's own stall "
        "(healthy pauses measured under 0.8 s; a longer block already times polls out)",
    )
    collector_write_stall_s: float = Field(
        default=10.0,
        gt=0,
        description="time without a successful save counted as a database stall (beyond SQLite's 5 s busy wait)",
    )
    collector_ingest_min_devices: int = Field(
        default=20,
        ge=1,
        description="push devices of a protocol expected to report before a fleet-wide silence is blamed on the ingest",
    )
    collector_stop_timeout_s: float = Field(
        default=5.0, gt=0, description="how long a stopping collector tries to save what it heard"
    )

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @field_validator("secret_keys", mode="before")
    @classmethod
    def _fernet_keys(cls, value: object) -> list[str]:
        # ConfigError, not ValueError: pydantic's message would repeat the input, which holds the keys.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = yaml.safe_load(text)
                except yaml.YAMLError:
                    raise ConfigError(f"{SECRET_KEYS_VARIABLE}: not a list of keys") from None
            else:
                value = text.split(",")
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{SECRET_KEYS_VARIABLE}: comma-separated keys, or a list of keys")
        keys = [item.get_secret_value() if isinstance(item, SecretStr) else str(item).strip() for item in value]
        keys = [key for key in keys if key]
        for index, key in enumerate(keys, 1):
            try:
                Fernet(key)
            except ValueError:
                raise ConfigError(
                    f"{SECRET_KEYS_VARIABLE}: key {index} of {len(keys)} is not a Fernet key (32 url-safe "
                    f"base64-encoded bytes); make one with: {MAKE_A_SECRET_KEY}"
                ) from None
        return keys

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_VARIABLE)
        if config_file:
            path = Path(config_file)
            if not path.is_file():
                raise ConfigError(f"{CONFIG_FILE_VARIABLE} names {path}, which is not a file")
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    @property
    def effective_database_url(self) -> str:
        """The database to use: `database_url`, or a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'monitor.db').resolve()}"

    @property
    def effective_web_threads(self) -> int:
        if self.web_threads is not None:
            return self.web_threads
        return 2 if self.effective_database_url.startswith("sqlite") else 4

    @property
    def effective_client_max_active(self) -> int:
        if self.web_client_max_active is not None:
            return self.web_client_max_active
        return max(1, self.effective_web_threads // 2)

    @property
    def is_demo(self) -> bool:
        return self.mode is Mode.DEMO

    def placeholder_secrets(self) -> list[str]:
        """Names of the environment variables whose secret is still a placeholder."""
        found = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
                found.append(f"MONITOR_{name.upper()}")
        return found

    def require_real_secrets(self) -> None:
        """Refuse to go on outside demo mode while a secret is a placeholder, naming each one."""
        if self.is_demo:
            return
        missing = self.placeholder_secrets()
        if missing:
            raise ConfigError(
                "refusing to start with placeholder secrets: set "
                + ", ".join(missing)
                + " (or run `monitor demo` to try the service)"
            )


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from overrides, the environment and the optional config file."""
    try:
        return Settings(**overrides)
    except ConfigError:
        raise
    except ValueError as exc:  # pydantic.ValidationError, YAML errors
        raise ConfigError(f"invalid settings: {exc}") from exc
