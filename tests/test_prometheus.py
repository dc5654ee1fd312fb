"""The Prometheus side, against Debian's real Prometheus 2.42, promtool and Alertmanager 0.25.

- `promtool check rules`, `promtool test rules` (deploy/prometheus/tests/) and `promtool check config`;
  `amtool check-config`, and Alertmanager delivering to the service's receiver with its bearer token.
- A real Prometheus scrapes a running service (tests/live_fleet.py: the web app and a collector with its own
  metrics server, polling the simulated fleet) with deploy/prometheus/prometheus.yml (targets pointed at the
  test's ports) and loads the rule files with every group's interval set to 1 s, so that rules written for
  minutes and hours evaluate within the test. Then **every PromQL expression** of the rule files and of the
  committed dashboards (Grafana variables replaced: `$district` by Cao Lộc's code, `$__rate_interval` by 30s)
  is sent to Prometheus' HTTP API: each must evaluate without error, and return data:
  * comparisons are asked with `bool` (`x > 5` becomes `x > bool 5`), so that an alert that is not firing
    still shows that its series exist;
  * `absent(x)` is asked as `x`;
  * `offset` looks further into the past than a server a few seconds old has, so such an expression must
    evaluate without error, and return data once its offsets are removed;
  * windows of 1, 30 and 365 days do return data on a fresh server: averages over the samples there are.

Nothing is skipped: without the Debian packages these tests fail and name scripts/ensure-debs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.grafana import expressions, read_dashboards
from tests.live_fleet import METRICS_TOKEN
from tests.peers import free_port, stop_process
from tests.recording_server import RecordingServer

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = ROOT / "deploy" / "prometheus"
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
VARIABLES = {"$__rate_interval": "30s", "$district": "183"}
SCRAPES_BEFORE_QUERYING = 10


def tool(name: str) -> str:
    """The path of a Debian tool these tests need; fails (never skips) when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: run scripts/ensure-debs (Debian packages prometheus, prometheus-alertmanager)"
        )
    return path


def run(*command: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


# --- the files, checked by Prometheus' own tools ---------------------------------------------------


def test_promtool_accepts_the_rule_files() -> None:
    result = run(tool("promtool"), "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_pass_their_promtool_unit_tests() -> None:
    result = run(tool("promtool"), "test", "rules", "tests/rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_prometheus_configuration(tmp_path: Path) -> None:
    """The whole check (rule files, targets, credentials), on a copy whose token file exists here."""
    folder = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS, folder)
    token_file = tmp_path / "metrics_token"
    token_file.write_text("a-token\n")
    config = (folder / "prometheus.yml").read_text()
    assert config.count("credentials_file: /run/secrets/metrics_token") == 2, "both fleet jobs carry the token"
    (folder / "prometheus.yml").write_text(config.replace("/run/secrets/metrics_token", str(token_file)))
    result = run(tool("promtool"), "check", "config", "prometheus.yml", cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_accepts_the_alertmanager_configuration() -> None:
    result = run(tool("amtool"), "check-config", str(ALERTMANAGER))
    assert result.returncode == 0, result.stdout + result.stderr


def _stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM the process by its pid, SIGKILL it after 15 s."""
    stop_process(process, grace_s=15)


def _get_json(url: str, timeout_s: float = 10) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.loads(response.read())


def test_alertmanager_sends_alerts_to_the_services_receiver_with_its_bearer_token(tmp_path: Path) -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    token_file = tmp_path / "alertmanager_token"
    token_file.write_text("am-token-for-the-test\n")
    with RecordingServer() as receiver:
        webhook = config["receivers"][0]["webhook_configs"][0]
        assert webhook["url"].endswith("/api/v1/integrations/alertmanager")
        assert webhook["http_config"]["authorization"]["type"] == "Bearer"
        webhook["url"] = f"{receiver.url}/api/v1/integrations/alertmanager"
        webhook["http_config"]["authorization"]["credentials_file"] = str(token_file)
        config["route"]["group_wait"] = "0s"  # the production value (30s) only delays the test
        (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        log = (tmp_path / "alertmanager.log").open("wb")
        process = subprocess.Popen(
            [
                tool("prometheus-alertmanager"),
                f"--config.file={tmp_path / 'alertmanager.yml'}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(f"http://127.0.0.1:{port}/-/ready", process, tmp_path / "alertmanager.log")
            alert = {
                "labels": {"alertname": "FleetDistrictUptimeBelowTarget", "district": "183", "severity": "warning"},
                "annotations": {"summary": "Thời gian hoạt động 30 ngày của huyện 183 dưới mục tiêu"},
                "startsAt": datetime.now(UTC).isoformat(),
            }
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v2/alerts",
                data=json.dumps([alert]).encode(),
                headers={"Content-Type": "application/json"},
            )
            urllib.request.urlopen(request, timeout=10).read()
            delivered = receiver.wait_for(lambda r: r.method == "POST", timeout_s=30)
        finally:
            _stop(process)
            log.close()
    assert delivered.path == "/api/v1/integrations/alertmanager"
    assert delivered.headers["Authorization"] == "Bearer am-token-for-the-test"
    payload = delivered.json()
    assert payload["version"] == "4" and payload["status"] == "firing"
    assert payload["alerts"][0]["labels"]["district"] == "183"


def _wait_ready(url: str, process: subprocess.Popen[Any], log: Path, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url} exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise AssertionError(f"not ready within {timeout_s:g} s: {url}\n{log.read_text(errors='replace')}")


# --- a real Prometheus scraping a running service --------------------------------------------------


@pytest.fixture(scope="module")
def live_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """tests/live_fleet.py in its own process, until the module's tests are done."""
    folder = tmp_path_factory.mktemp("live")
    log = (folder / "service.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.live_fleet", str(folder)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 120
        while not (folder / "ports.json").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the service did not start:\n{(folder / 'service.log').read_text()}")
            time.sleep(0.2)
        yield json.loads((folder / "ports.json").read_text())
    finally:
        _stop(process)
        log.close()


def _test_configuration(folder: Path, web: int, collector: int, port: int) -> Path:
    """deploy/prometheus/prometheus.yml pointed at the test's processes, scraping every second, and the rule
    files with every group evaluated every second."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    config["global"] |= {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    config.pop("alerting")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) >= {"fleet-web", "fleet-collector"}
    jobs["fleet-web"]["static_configs"] = [{"targets": [f"127.0.0.1:{web}"]}]
    collector_job = jobs["fleet-collector"]
    collector_job.pop("file_sd_configs")
    collector_job |= {"static_configs": [{"targets": [f"127.0.0.1:{collector}"]}], "scrape_interval": "1s",
                      "scrape_timeout": "1s"}  # fmt: skip
    jobs["prometheus"]["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    token_file = folder / "metrics_token"
    token_file.write_text(METRICS_TOKEN + "\n")
    for job in (jobs["fleet-web"], collector_job):  # the deployed scrapes carry MONITOR_METRICS_TOKEN
        assert job["authorization"] == {"type": "Bearer", "credentials_file": "/run/secrets/metrics_token"}
        job["authorization"]["credentials_file"] = str(token_file)
    rules = []
    for source in RULE_FILES:
        groups = yaml.safe_load(source.read_text())
        for group in groups["groups"]:
            group["interval"] = "1s"
        (folder / source.name).write_text(yaml.safe_dump(groups, allow_unicode=True))
        rules.append(source.name)
    config["rule_files"] = rules
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    return folder / "prometheus.yml"


def _query(base: str, expr: str) -> dict[str, Any]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        return dict(_get_json(url))
    except urllib.error.HTTPError as exc:  # 400 / 422: the expression's error, in Prometheus' words
        return dict(json.loads(exc.read()))


@pytest.fixture(scope="module")
def prometheus(live_service: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's Prometheus scraping the live service, once it has SCRAPES_BEFORE_QUERYING scrapes of each process."""
    binary = tool("prometheus")
    folder = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    config = _test_configuration(folder, live_service["web"], live_service["collector"], port)
    log_path = folder / "prometheus.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"{base}/-/ready", process, log_path)
        deadline = time.monotonic() + 60
        enough = f"min(count_over_time(up{{job=~'fleet-.*'}}[1m])) >= {SCRAPES_BEFORE_QUERYING}"
        while not _query(base, enough)["data"]["result"]:
            assert time.monotonic() < deadline, f"too few scrapes within 60 s:\n{log_path.read_text()}"
            time.sleep(0.5)
        yield base
    finally:
        _stop(process)
        log.close()


def test_prometheus_scrapes_the_web_and_collector_processes_cleanly(prometheus: str) -> None:
    targets = _get_json(f"{prometheus}/api/v1/targets")["data"]["activeTargets"]
    by_job = {t["labels"]["job"]: t for t in targets}
    for job in ("fleet-web", "fleet-collector"):
        assert by_job[job]["health"] == "up" and by_job[job]["lastError"] == "", by_job[job]
    problems = (
        "sum(prometheus_target_scrapes_sample_duplicate_timestamp_total)"
        " + sum(prometheus_target_scrapes_sample_out_of_order_total)"
        " + sum(prometheus_target_scrapes_sample_out_of_bounds_total)"
    )
    assert float(_query(prometheus, problems)["data"]["result"][0]["value"][1]) == 0
    devices = _query(prometheus, 'count(fleet_device_info{job="fleet-web"})')["data"]["result"]
    assert int(devices[0]["value"][1]) > 1800, "every device comes from the web process"
    assert not _query(prometheus, 'fleet_device_up{job="fleet-collector"}')["data"]["result"], "and only from it"


def test_every_rule_is_evaluated_without_error(prometheus: str) -> None:
    groups = _get_json(f"{prometheus}/api/v1/rules")["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == len(_rule_expressions())
    broken = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not broken


def _rule_expressions() -> list[tuple[str, str]]:
    found = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                found.append((f"{path.name} / {rule.get('record') or rule.get('alert')}", rule["expr"]))
    return found


def _dashboard_expressions() -> list[tuple[str, str]]:
    return [found for content in read_dashboards(ROOT / "dashboards").values() for found in expressions(content)]


ALL_EXPRESSIONS = _rule_expressions() + _dashboard_expressions()
_COMPARISON = re.compile(r"(==|!=|>=|<=|>(?!=)|<(?!=))(\s*bool\b)?")
_OFFSET = re.compile(r"\s+offset\s+\d+[smhdwy]")


def with_bool(expr: str) -> str:
    """`expr` with `bool` after every comparison outside label matchers and strings: a filter becomes 0 or 1,
    so the expression shows its series even when the condition does not hold."""
    out: list[str] = []
    depth, quote, i = 0, "", 0
    while i < len(expr):
        ch = expr[i]
        if quote:
            out.append(ch)
            quote = "" if ch == quote and expr[i - 1] != "\\" else quote
        elif ch in "\"'`":
            quote = ch
            out.append(ch)
        elif ch in "{}":
            depth += 1 if ch == "{" else -1
            out.append(ch)
        elif depth == 0 and (match := _COMPARISON.match(expr, i)):
            out.append(match.group(0) if match.group(2) else f"{match.group(1)} bool")
            i = match.end()
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def data_expression(expr: str) -> str:
    """What must return data for `expr` to be a useful expression on a server a few seconds old."""
    expr = _OFFSET.sub("", expr.strip())
    if expr.startswith("absent(") and expr.endswith(")"):
        expr = expr[len("absent(") : -1]
    return with_bool(expr)


def test_with_bool_touches_comparisons_only() -> None:
    assert with_bool('up{job="x",a!="b"} == 0') == 'up{job="x",a!="b"} == bool 0'
    assert with_bool("a < on () group_left () b") == "a < bool on () group_left () b"
    assert with_bool("(a >= 10) and b >= bool 20") == "(a >= bool 10) and b >= bool 20"
    assert data_expression("x - (x offset 1h) >= 3") == "x - (x) >= bool 3"
    assert data_expression('absent(up{job="c"})') == 'up{job="c"}'


@pytest.mark.parametrize(("where", "expr"), ALL_EXPRESSIONS, ids=[where for where, _ in ALL_EXPRESSIONS])
def test_every_promql_expression_evaluates_and_returns_data(prometheus: str, where: str, expr: str) -> None:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"{where}: a Grafana variable the test does not know: {expr}"
    answer = _query(prometheus, expr)
    assert answer["status"] == "success", f"{where}: {answer.get('error')}\n{expr}"
    checked = data_expression(expr)
    answer = _query(prometheus, checked)
    assert answer["status"] == "success", f"{where}: {answer.get('error')}\n{checked}"
    assert answer["data"]["result"], f"{where}: no data for\n{checked}"
