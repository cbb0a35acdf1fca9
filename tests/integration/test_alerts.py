"""Alerts over a real store: episodes and their notifications, silences and inhibition that
mute what they should and nothing else, verdicts and the review, replay equal to live."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import watchkeeper
from tests.helpers import ALERTS_T0 as T0
from tests.helpers import ALERTS_YAML as YAML
from tests.helpers import HOUR, Clock, write_series
from watchkeeper.config import ReceiverConfig, parse_config
from watchkeeper.errors import WatchkeeperError


class Receiver:
    """Records what would have been sent, by receiver."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []
        self.down = False

    def __call__(self, receiver: ReceiverConfig, notification_id: str, body: Any) -> None:
        if self.down:
            raise OSError("connection refused")
        self.sent.append((receiver.name, notification_id, body))

    def kinds(self, name: str) -> list[tuple[str, str]]:
        out = []
        for r, _, body in self.sent:
            if r != name:
                continue
            if isinstance(body, list):  # Alertmanager
                out.append(
                    (
                        body[0]["labels"]["alertname"],
                        "resolved" if "endsAt" in body[0] else "firing",
                    )
                )
            else:
                out.append((body["rule"], body["kind"]))
        return out


@pytest.fixture
def ws(tmp_path: Path, clock: Clock) -> Any:
    clock.now = T0
    with watchkeeper.open(parse_config(YAML, base_dir=tmp_path), clock=clock) as w:
        yield w


def test_an_alert_fires_notifies_and_resolves(ws: watchkeeper.Workspace, clock: Clock) -> None:
    write_series(ws, "fraud", "row_count", "", [1000, 1000, 300, 300, 300, 1000, 1000])
    receiver = Receiver()
    seen = []
    for h in range(1, 8):
        clock.now = T0 + h * HOUR
        seen += [(e.kind, e.window_start) for e in ws.evaluate_alerts("fraud").events]
        ws.deliver_notifications(receiver)
    assert seen == [("firing", T0 + 3 * HOUR), ("resolved", T0 + 5 * HOUR)]
    assert receiver.kinds("hook") == [("volume_drop", "firing"), ("volume_drop", "resolved")]
    # Alertmanager hears of a firing alert again each hour it still fires (resend_every).
    assert receiver.kinds("pager") == [
        ("volume_drop", "firing"),
        ("volume_drop", "firing"),
        ("volume_drop", "resolved"),
    ]
    _, notification_id, body = next(x for x in receiver.sent if x[0] == "hook")
    assert body["notification_id"] == notification_id
    assert body["summary"] == "fraud: row count is 300, below 500 (traffic fell)"
    assert body["evidence"][0]["value"] == 300 and body["evidence"][0]["compared_with"] == 500
    assert body["dashboard"].endswith(f"/models/fraud/alerts/{body['alert_id']}")
    [episode] = ws.alerts("fraud")
    assert episode["state"] == "resolved" and episode["resolved_at"] == T0 + 6 * HOUR
    # Evaluating again changes nothing and sends nothing.
    ws.evaluate_alerts("fraud")
    assert ws.deliver_notifications(receiver).delivered == 0


def test_failed_deliveries_are_retried_with_backoff(
    ws: watchkeeper.Workspace, clock: Clock
) -> None:
    write_series(ws, "fraud", "error_rate", "", [0.5])
    clock.now = T0 + HOUR
    ws.evaluate_alerts("fraud")
    receiver = Receiver()
    receiver.down = True
    assert ws.deliver_notifications(receiver).failed == 2
    receiver.down = False
    assert ws.deliver_notifications(receiver).delivered == 0  # not due yet
    clock.now += timedelta(seconds=6)
    assert ws.deliver_notifications(receiver).delivered == 2
    assert len(receiver.sent) == 2


def test_a_silence_mutes_what_it_matches_and_nothing_else(
    ws: watchkeeper.Workspace, clock: Clock
) -> None:
    write_series(ws, "fraud", "error_rate", "", [0.5, 0.5, 0.5, 0.5])
    write_series(ws, "churn", "error_rate", "", [0.5, 0.5, 0.5, 0.5])
    silence = ws.silence({"model": "fraud"}, duration="2h", comment="planned release")
    clock.now = T0 + HOUR
    found = ws.evaluate_alerts()
    receiver = Receiver()
    ws.deliver_notifications(receiver)
    assert {b["model"] for r, _, b in receiver.sent if r == "hook"} == {"churn"}
    assert list(found.muted.values()) == [f"silenced by {silence}"]
    # When the silence ends, the alert still firing is told.
    clock.now = T0 + 3 * HOUR
    ws.evaluate_alerts()
    ws.deliver_notifications(receiver)
    assert sorted(b["model"] for r, _, b in receiver.sent if r == "hook") == ["churn", "fraud"]


def test_an_infrastructure_page_inhibits_the_data_alerts_it_explains(
    ws: watchkeeper.Workspace, clock: Clock
) -> None:
    write_series(ws, "fraud", "error_rate", "", [0.5, 0.5, 0.0, 0.0])
    write_series(ws, "fraud", "missing_rate", "amount", [0.4, 0.4, 0.4, 0.0])
    write_series(ws, "churn", "missing_rate", "amount", [0.4, 0.4, 0.4, 0.0])
    receiver = Receiver()
    clock.now = T0 + HOUR
    found = ws.evaluate_alerts()
    ws.deliver_notifications(receiver)
    hooked = sorted((b["model"], b["rule"]) for r, _, b in receiver.sent if r == "hook")
    # churn's data alert has no outage to explain it: it is sent.
    assert hooked == [("churn", "missing_amount"), ("fraud", "error_spike")]
    assert any(reason.startswith("inhibited by") for reason in found.muted.values())
    # The outage resolves; the data problem remains, so now it is told.
    clock.now = T0 + 3 * HOUR
    ws.evaluate_alerts()
    ws.deliver_notifications(receiver)
    kinds = [(b["model"], b["rule"], b["kind"]) for r, _, b in receiver.sent if r == "hook"]
    assert ("fraud", "missing_amount", "firing") in kinds
    assert ("fraud", "error_spike", "resolved") in kinds


def test_verdicts_and_the_review(ws: watchkeeper.Workspace, clock: Clock) -> None:
    # A flapping rule: errors above 0.2 every other hour.
    write_series(ws, "fraud", "error_rate", "", [0.5 if i % 2 == 0 else 0.0 for i in range(12)])
    write_series(ws, "fraud", "row_count", "", [1000] * 4 + [100] * 4 + [1000] * 4)
    for h in range(1, 13):
        clock.now = T0 + h * HOUR
        ws.evaluate_alerts("fraud")
    errors = ws.alerts("fraud")
    spikes = [a for a in errors if a["rule"] == "error_spike"]
    assert len(spikes) == 6
    for a in spikes[:4]:
        ws.close_alert(a["alert_id"], "noise", comment="retries, not errors")
    [volume] = [a for a in errors if a["rule"] == "volume_drop"]
    ws.acknowledge(volume["alert_id"], by="ana")
    ws.close_alert(volume["alert_id"], "actionable", comment="load balancer")
    with pytest.raises(WatchkeeperError, match="verdict must be one of"):
        ws.close_alert(volume["alert_id"], "maybe")
    review = {r.rule: r for r in ws.review_alerts()}
    assert review["error_spike"].fired == 6
    assert review["error_spike"].verdicts == {"noise": 4}
    assert review["error_spike"].flapping == 5
    assert "noise" in review["error_spike"].advice
    assert review["volume_drop"].actionable_share == 1.0
    # Low from hour 4 to 7; fired at the end of hour 5 (for: 2), resolved at the end of hour 8.
    assert review["volume_drop"].median_time_to_resolve == 3 * HOUR
    assert ws.review_alerts()[0].rule == "error_spike"  # the rule that most needs tuning first
    closed = ws.alerts("fraud", state="resolved", since=T0 + 5 * HOUR)
    assert [(a["rule"], a["verdict"]) for a in closed if a["rule"] == "volume_drop"] == [
        ("volume_drop", "actionable")
    ]


def test_replay_equals_live_and_tunes_on_evidence(ws: watchkeeper.Workspace, clock: Clock) -> None:
    rng = np.random.default_rng([7, 1])
    values = rng.normal(1000, 200, 200)
    values[50:60] = 300
    values[120:122] = 400
    write_series(ws, "fraud", "row_count", "", values)
    for h in range(1, 201):
        clock.now = T0 + h * HOUR
        ws.evaluate_alerts("fraud")
    live = [
        (a["alert_id"], a["window_start"]) for a in ws.alerts("fraud") if a["rule"] == "volume_drop"
    ]
    replayed = ws.replay_rule("volume_drop", since=T0)
    assert [(r.alert_id, r.fired_window) for r in replayed] == live
    assert len(live) >= 2
    # An edited copy with a longer hold would have fired only for the long outage.
    stricter = ws.replay_rule("volume_drop", since=T0, settings=["for=5"])
    assert [r.fired_window for r in stricter] == [T0 + 54 * HOUR]
    with pytest.raises(WatchkeeperError, match="no rule"):
        ws.replay_rule("nope", since=T0)
    with pytest.raises(WatchkeeperError, match="not valid"):
        ws.replay_rule("volume_drop", since=T0, settings=["severity=urgent"])


def test_alert_rules_in_the_config_are_checked_with_their_place(tmp_path: Path) -> None:
    with pytest.raises(WatchkeeperError) as err:
        parse_config(YAML.replace("severity: ticket", "severity: urgent"), base_dir=tmp_path)
    assert "line 23: alerting.rules[1].severity: must be one of info, ticket, page" in str(
        err.value
    )
    bad = YAML.replace("{metric: row_count, below: 500}", "{metric: row_count}").replace(
        "models:\n  - name: fraud", "models:\n  - name: fraud"
    )
    bad = bad.replace("- name: error_spike", "- name: error_spike\n      models: nomodel")
    with pytest.raises(WatchkeeperError) as err:
        parse_config(bad, base_dir=tmp_path)
    text = str(err.value)
    assert "line 20: alerting.rules[0].conditions[0]: needs above, below or status" in text
    assert "alerting.rules[2].models: matches no model (models: fraud, churn)" in text


def test_the_default_rules_do_not_page_on_ninety_calm_days(tmp_path: Path, clock: Clock) -> None:
    """`watchkeeper init`'s rule set over 90 days of hourly metrics that only vary by
    chance (daily traffic cycle, sampling noise, the 5% of drift tests that fire on noise)."""
    from watchkeeper.config import EXAMPLE_CONFIG

    # Hourly windows for every rule: the model's own window made an hour.
    text = EXAMPLE_CONFIG.replace("watchkeeper.duckdb", "calm.duckdb")
    config = parse_config(text.replace("      window: 1d ", "      window: 1h "), base_dir=tmp_path)
    rng = np.random.default_rng([90, 1])
    hours = 90 * 24
    cycle = np.sin(2 * np.pi * np.arange(hours) / 24)
    n = rng.poisson(2000 + 800 * cycle)
    clock.now = T0
    with watchkeeper.open(config, clock=clock) as w:
        write_series(w, "fraud", "volume_ratio", "", rng.normal(1, 0.08, hours))
        write_series(w, "fraud", "error_rate", "", rng.binomial(n, 0.01) / n)
        write_series(w, "fraud", "latency_p99", "latency_ms", rng.normal(300 + 40 * cycle, 15))
        write_series(w, "fraud", "outcome_rate", "confirmed_fraud", rng.binomial(n, 0.03) / n)
        for column in ("amount", "country", "score"):
            drifted = rng.uniform(size=hours) < 0.05
            write_series(w, "fraud", "drift", column, np.where(drifted, 0.2, 0.02), status=drifted)
        clock.now = T0 + hours * HOUR
        found = w.evaluate_alerts("fraud")
        pages = [e for e in found.events if e.severity == "page"]
        assert pages == [], [e.summary for e in pages]
        # Nor many tickets: at most one a month from chance alone.
        tickets = [e.labels["alertname"] for e in found.events if e.kind == "firing"]
        assert len(tickets) <= 3, tickets
        # The same rules do page on a real outage.
        outage = [1.0] * 24 + [0.2] * 3
        write_series(w, "fraud", "volume_ratio", "", outage, start=hours)
        clock.now = T0 + (hours + len(outage)) * HOUR
        paged = [
            e.labels["alertname"] for e in w.evaluate_alerts("fraud").events if e.severity == "page"
        ]
        assert paged == ["traffic_drop"]


def test_a_rule_the_reference_cannot_judge_says_so(tmp_path: Path, clock: Clock) -> None:
    yaml = YAML.replace(
        "  rules:\n",
        "  rules:\n"
        "    - name: auc_drop\n"
        "      severity: page\n"
        "      conditions:\n"
        "        - {metric: roc_auc, against: reference, below: -0.05}\n",
        1,
    )
    clock.now = T0
    with watchkeeper.open(parse_config(yaml, base_dir=tmp_path), clock=clock) as ws:
        rng = np.random.default_rng(5)
        reference = {"amount": rng.normal(50, 10, 500), "score": rng.uniform(size=500)}
        ws.set_reference("fraud", pd.DataFrame(reference), labels=False)
        write_series(ws, "fraud", "roc_auc", "", [0.8, 0.6, 0.6, 0.6])
        clock.now = T0 + 5 * HOUR
        found = ws.evaluate_alerts("fraud")
    assert [e for e in found.events if e.rule == "auc_drop"] == []
    why = found.unjudged["fraud/auc_drop"]
    assert "no value of roc_auc" in why and "reference with labels" in why
    assert "fraud/volume_drop" not in found.unjudged
