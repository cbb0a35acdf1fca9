"""The Python door into watchkeeper: a config and its store, opened together.

>>> import watchkeeper
>>> with watchkeeper.open("watchkeeper.yaml") as wk:
...     result = wk.ingest_events("fraud", "events.parquet")
...     print(result.summary())

The CLI and the HTTP service call the same methods.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from watchkeeper import alerts as alerting
from watchkeeper.config import CONFIG_FILENAME, Config, load_config
from watchkeeper.errors import UnknownAlertError
from watchkeeper.ingest import IngestResult, ingest, open_source
from watchkeeper.ingest.pipeline import Progress
from watchkeeper.ingest.readers import require_column
from watchkeeper.monitor import Cycle, RunResult
from watchkeeper.monitor import run as run_monitor
from watchkeeper.monitor.aggregates import slice_columns
from watchkeeper.monitor.backtest import Backtest
from watchkeeper.monitor.backtest import load as load_backtest
from watchkeeper.monitor.runs import Planned, planned_runs
from watchkeeper.profiles.queries import latest_per_key
from watchkeeper.reference import ReferenceProfile, stored
from watchkeeper.reference.values import ReferenceValues, reference_values
from watchkeeper.report import build as build_report
from watchkeeper.schema import BATCH, INGESTED_AT, MODEL_VERSION, Kind, spec_for
from watchkeeper.store import Store
from watchkeeper.store.metrics import MetricsTable
from watchkeeper.store.tables import QUARANTINE, RUNS
from watchkeeper.triage import Triage
from watchkeeper.triage import triage as run_triage
from watchkeeper.triage.examples import examples
from watchkeeper.windows import parse_duration, parse_time

Clock = Callable[[], datetime]
log = logging.getLogger("watchkeeper")


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def find_config(path: str | Path | None = None) -> Path:
    """The config to use: the given path, $WATCHKEEPER_CONFIG, or ./watchkeeper.yaml."""
    if path is not None:
        return Path(path)
    env = os.environ.get("WATCHKEEPER_CONFIG")
    return Path(env) if env else Path.cwd() / CONFIG_FILENAME


class Workspace:
    """A loaded config and an open store. Time comes from ``clock`` (injectable)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock = _wall_clock,
        events: Store | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        # Where events and labels are read from: the store itself, or the engine where the
        # team's logs already live (Spark, a lakehouse), whose aggregations are pushed there.
        self.events_store = events or store
        self.metrics_table = MetricsTable(store)
        self._borrowed_events = False
        # Reference profiles and their values, read once per fitted reference, not per cycle.
        self._profiles: dict[tuple[str, str], tuple[Any, ReferenceProfile]] = {}
        self._reference_values: dict[str, tuple[ReferenceProfile, ReferenceValues]] = {}

    @classmethod
    def open(
        cls,
        config: str | Path | Config | None = None,
        clock: Clock = _wall_clock,
        events_backend: Any = None,
    ) -> Workspace:
        """Open a config's store. ``events_backend`` is an Ibis backend (for example
        ``ibis.pyspark.connect(spark)``) holding the events and labels tables; without it
        they are read from ``engine.events_url`` if set, else from the store itself."""
        cfg = config if isinstance(config, Config) else load_config(find_config(config))
        store = Store.open(cfg.engine_url(), cfg.engine.memory_limit, cfg.engine.threads)
        events: Store | None = None
        try:
            store.ensure(cfg)
            if events_backend is not None:
                events = Store(events_backend, f"{events_backend.name}://")
            elif cfg.engine.events_url:
                events = Store.open(cfg.engine.events_url)
        except BaseException:
            store.close()
            raise
        workspace = cls(cfg, store, clock, events)
        workspace._borrowed_events = events_backend is not None
        return workspace

    def close(self) -> None:
        # A backend handed in (a team's Spark session) is theirs to stop, not ours.
        if self.events_store is not self.store and not self._borrowed_events:
            self.events_store.close()
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- ingestion ----------------------------------------------------------------------

    def ingest(
        self,
        kind: Kind,
        model: str,
        data: Any,
        *,
        version: str | None = None,
        progress: Progress | None = None,
        batch_rows: int | None = None,
        labels: bool = True,
    ) -> IngestResult:
        """Validate and store events, labels, outcomes or reference rows from ``data``:
        a file path, a pandas or polars DataFrame, a pyarrow Table or a list of dicts.
        A reference must carry the configured label column unless ``labels`` is false (a
        reference without labels: drift and quality only, no reference performance)."""
        cfg = self.config.model(model)
        source = open_source(data) if batch_rows is None else open_source(data, batch_rows)
        if kind == "reference" and labels:
            source = require_column(
                source,
                cfg.labels.column,
                f"the reference has no {cfg.labels.column!r} column, the label column that "
                f"models.{model}.labels.column names; name the reference's label column there, "
                "or set the reference without labels (`--no-labels`, or labels=False), which "
                "leaves out every rule that compares performance with the reference",
            )
        result = ingest(
            self.store, cfg, kind, source, now=self.clock(), version=version, progress=progress
        )
        if kind == "reference" and result.accepted:
            # A new reference is fitted at once, so runs never refit on their own.
            self.fit_reference(model, version)
        return result

    def ingest_events(self, model: str, data: Any, **kwargs: Any) -> IngestResult:
        return self.ingest("events", model, data, **kwargs)

    def ingest_labels(self, model: str, data: Any, **kwargs: Any) -> IngestResult:
        return self.ingest("labels", model, data, **kwargs)

    def ingest_outcomes(self, model: str, data: Any, **kwargs: Any) -> IngestResult:
        return self.ingest("outcomes", model, data, **kwargs)

    def set_reference(
        self,
        model: str,
        data: Any,
        version: str | None = None,
        *,
        labels: bool = True,
        **kwargs: Any,
    ) -> IngestResult:
        """Store the reference data (training or validation set) for a model version, and
        fit its reference profile (the bins every window of that version is counted in).
        It must carry the label column unless ``labels=False``."""
        self._forget_reference()
        return self.ingest("reference", model, data, version=version, labels=labels, **kwargs)

    def fit_reference(self, model: str, version: str | None = None) -> ReferenceProfile:
        """(Re)fit and store the reference profile of a model version from its reference
        (and its estimator of performance without labels, where the task has one)."""
        cfg = self.config.model(model)
        self._forget_reference()
        return stored.fit_reference(
            self.store, cfg, version or cfg.version, slice_columns(cfg), self.clock()
        )

    def _forget_reference(self) -> None:
        self._profiles.clear()
        self._reference_values.clear()

    def reference_profile(self, model: str, version: str | None = None) -> ReferenceProfile | None:
        """The reference profile fitted last for a model version, if any."""
        cfg = self.config.model(model)
        return stored.load_profile(self.store, model, version or cfg.version, self._profiles)

    # -- monitoring ---------------------------------------------------------------------

    def run(
        self,
        model: str,
        *,
        window: timedelta | str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        full: bool = False,
        progress: Callable[[int, int | None], None] | None = None,
        families: Sequence[str] | None = None,
        segments: bool = True,
    ) -> RunResult:
        """Compute the metrics of the due and dirty windows (or of ``since``..``until``);
        with ``families`` only those (see ``watchkeeper.metrics.registry``)."""
        cfg = self.config.model(model)
        with (
            self.store.working_memory(self.config.engine.run_memory_limit),
            self.events_store.working_memory(self.config.engine.run_memory_limit),
        ):
            return run_monitor(
                self.store,
                cfg,
                lambda version: self.reference_profile(model, version),
                now=self.clock(),
                window=parse_duration(window) if window is not None else None,
                since=parse_time(since) if since is not None else None,
                until=parse_time(until) if until is not None else None,
                full=full,
                progress=progress,
                events_store=self.events_store if self.events_store is not self.store else None,
                families=families,
                segments=segments,
            )

    def metrics(
        self,
        model: str,
        *,
        metric: str | None = None,
        column: str | None = None,
        segment: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        window: timedelta | str | None = None,
    ) -> pa.Table:
        """Stored metrics, oldest first. ``segment`` is ``column=value`` (``*`` for all)."""
        self.config.model(model)
        return self.metrics_table.table(
            model,
            metrics=None if metric is None else [metric],
            column=column,
            segment=segment,
            since=parse_time(since) if since is not None else None,
            until=parse_time(until) if until is not None else None,
            size=parse_duration(window) if window is not None else None,
        )

    # -- reading back -------------------------------------------------------------------

    def series(
        self,
        model: str,
        metric: str,
        column: str = "",
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[tuple[datetime, float, bool]]:
        """A metric's whole-traffic series over the model's windows, one value per window:
        where versions share a window, counts and amounts add up and rates are averaged by
        their events; provisional if any part is. Aggregated in the engine."""
        cfg = self.config.model(model)
        return self.metrics_table.series(
            model, metric, column, size=cfg.monitoring.window, since=since, through=until
        )

    def events(self, model: str) -> ir.Table:
        return self.events_store.table(spec_for("events", self.config.model(model)).table)

    def labels(self, model: str) -> ir.Table:
        """The label in force per event: the newest one received."""
        return latest_per_key(
            self.store.table(spec_for("labels", self.config.model(model)).table), "event_id"
        )

    # -- alerts -------------------------------------------------------------------------

    def reference_values(self, model: str) -> dict[tuple[str, str, str], float]:
        """Each metric's value on the reference of the model's current version."""
        cfg = self.config.model(model)
        ref = self.reference_profile(model, cfg.version)
        if ref is None:
            return {}
        known = self._reference_values.get(model)  # valid while it is the same profile
        if known is None or known[0] is not ref:
            known = self._reference_values[model] = (ref, reference_values(self.store, cfg, ref))
        return dict(known[1])

    def evaluate_alerts(self, model: str | None = None) -> alerting.Evaluated:
        """Evaluate the alert rules over the windows closed since the last evaluation (for
        one model, or all), store what changed and queue its notifications. Deliver them
        with ``deliver_notifications``."""
        return self._evaluate(
            [model] if model is not None else [m.name for m in self.config.models]
        )

    def _evaluate(self, names: list[str]) -> alerting.Evaluated:
        now = self.clock()
        events: list[alerting.AlertEvent] = []
        queued = 0
        muted: dict[str, str] = {}
        unjudged: dict[str, str] = {}
        for name in names:
            cfg = self.config.model(name)
            found = alerting.evaluate_model(
                self.store, self.config, cfg, now, functools.partial(self.reference_values, name)
            )
            events += found.events
            queued += found.notifications
            muted |= found.muted
            unjudged |= {f"{name}/{rule}": why for rule, why in found.unjudged.items()}
        return alerting.Evaluated(events, queued, muted, unjudged)

    def deliver_notifications(self, send: Any = None) -> alerting.Delivery:
        """Send the notifications waiting in the outbox (retrying failed ones when due)."""
        alerting.reconcile(self.store, self.config.alerting, self.clock())
        if send is None:
            return alerting.deliver(self.store, self.config.alerting, self.clock())
        return alerting.deliver(self.store, self.config.alerting, self.clock(), send)

    def cycle(
        self,
        models: list[str] | None = None,
        *,
        run: bool = True,
        strict: bool = True,
        window: timedelta | str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        full: bool = False,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> Cycle:
        """One monitoring cycle, the same for the CLI, the API, the scheduler and the demo:
        run each model (its due and dirty windows, or the given range), evaluate the alert
        rules, deliver the notifications. With ``strict`` the first failure is raised (after
        being recorded); without, each failure is recorded and logged and the cycle goes on
        with the other models (the scheduler's way)."""
        names = models if models is not None else [m.name for m in self.config.models]
        done = Cycle()
        for name in names:
            if not run:
                break
            cfg = self.config.model(name)
            # A given window size runs alone; otherwise every size the rules name (a range
            # or --full recomputes each of them).
            plans = [Planned(parse_duration(window))] if window else planned_runs(self.config, cfg)
            try:
                for plan in plans:
                    found = self.run(
                        name,
                        window=plan.window,
                        since=since,
                        until=until,
                        full=full,
                        progress=progress,
                        families=plan.families,
                        segments=plan.segments,
                    )
                    if plan.families is None:
                        done.runs[name] = found
                    else:
                        done.lean.setdefault(name, []).append(found)
            except Exception as exc:  # recorded (runs table, the cycle, the log); raised if strict
                done.failed[name] = f"{type(exc).__name__}: {exc}"
                log.exception("the run of %s failed", name)
                if strict:
                    raise
        if self.config.alerting.rules:
            evaluated = []
            for name in names:
                if name in done.failed:
                    continue
                try:
                    evaluated.append(self._evaluate([name]))
                except Exception as exc:  # recorded and logged; raised if strict
                    done.failed[name] = f"alerts: {type(exc).__name__}: {exc}"
                    log.exception("evaluating the alerts of %s failed", name)
                    if strict:
                        raise
            done.evaluated = alerting.Evaluated(
                [e for f in evaluated for e in f.events],
                sum(f.notifications for f in evaluated),
                {k: v for f in evaluated for k, v in f.muted.items()},
                {k: v for f in evaluated for k, v in f.unjudged.items()},
            )
            done.delivery = self.deliver_notifications()
        return done

    def alerts(
        self,
        model: str | None = None,
        *,
        state: str | None = None,
        since: datetime | str | None = None,
    ) -> list[dict[str, Any]]:
        """Alert episodes, oldest first: their state, severity, owner, evidence, verdict."""
        start = parse_time(since) if since is not None else None

        def where(t: Any) -> Any:
            cond = t.alert_id.notnull()
            if model is not None:
                cond &= t.model == model
            if state is not None:
                cond &= t.state == state
            if start is not None:
                cond &= t.started_at >= start
            return cond

        return alerting.episodes(self.store, where)

    def alert(self, alert_id: str) -> dict[str, Any]:
        """One alert episode by its id (UnknownAlertError if there is none)."""
        return alerting.episode(self.store, alert_id)

    def acknowledge(self, alert_id: str, *, by: str = "", comment: str = "") -> None:
        alerting.acknowledge(self.store, alert_id, self.clock(), by, comment)

    def close_alert(self, alert_id: str, verdict: str, *, comment: str = "", by: str = "") -> None:
        """Close an alert with a verdict: actionable, noise or expected_change."""
        alerting.close(self.store, alert_id, verdict, self.clock(), comment, by)

    def silence(
        self,
        matchers: dict[str, str],
        *,
        duration: timedelta | str = "2h",
        comment: str = "",
        by: str = "",
    ) -> str:
        """Mute alerts whose labels match (patterns allowed) for ``duration``."""
        now = self.clock()
        span = parse_duration(duration) if isinstance(duration, str) else duration
        return alerting.add_silence(self.store, matchers, now + span, now, by, comment)

    def silences(self) -> list[dict[str, Any]]:
        return alerting.active_silences(self.store, self.clock())

    def expire_silence(self, silence_id: str) -> None:
        alerting.expire_silence(self.store, silence_id, self.clock())

    def review_alerts(
        self, *, since: datetime | str | None = None, until: datetime | str | None = None
    ) -> list[alerting.RuleReview]:
        return alerting.review(
            self.store,
            parse_time(since) if since is not None else None,
            parse_time(until) if until is not None else None,
        )

    def replay_rule(
        self,
        rule: str,
        *,
        model: str | None = None,
        since: datetime | str,
        until: datetime | str | None = None,
        settings: list[str] | tuple[str, ...] = (),
    ) -> list[alerting.ReplayedAlert]:
        """What ``rule`` (edited by ``settings`` such as ``for=3``) would have fired over the
        stored history, per model it applies to."""
        found = alerting.edited(alerting.rule_named(self.config, rule), settings)
        names = [model] if model else [m.name for m in self.config.models]
        out: list[alerting.ReplayedAlert] = []
        end = parse_time(until) if until is not None else self.clock()
        for name in names:
            cfg = self.config.model(name)
            if not fnmatch.fnmatchcase(name, found.models):
                continue
            out += alerting.replay(
                self.store,
                self.config,
                found,
                cfg,
                parse_time(since),
                end,
                functools.partial(self.reference_values, name),
            )
        return out

    def triage(
        self,
        model: str,
        *,
        metric: str | None = None,
        at: datetime | str | None = None,
        alert: str | None = None,
        window: timedelta | str | None = None,
    ) -> Triage:
        """Work a drop back to its most likely cause: ``metric`` (default: the task's
        headline metric) at the window containing ``at`` (default: the newest), or what an
        alert fired on. Every step is written down with its evidence."""
        cfg = self.config.model(model)
        found = None
        if alert is not None:
            found = self.alert(alert)
            if found["model"] != model:
                raise UnknownAlertError(alert)
        size = parse_duration(window) if isinstance(window, str) else window
        when = parse_time(at) if isinstance(at, str) else at
        done = run_triage(self.store, cfg, metric=metric, at=when, window=size, alert=found)
        done.examples = examples(self.events_store, cfg, done, self.reference_profile(model))
        return done

    def report(
        self,
        model: str,
        *,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> str:
        """The stakeholder report: one self-contained HTML page, plain language first."""
        return build_report(
            self,
            model,
            parse_time(since) if since is not None else None,
            parse_time(until) if until is not None else None,
        )

    def backtest(
        self, model: str, *, last: int = 30, window: timedelta | str | None = None
    ) -> dict[str, Backtest]:
        """How far to trust the performance estimated without labels: per estimated metric,
        how often its band covered the realized value over the last ``last`` windows with
        labels, its mean error, and a verdict (``holds``, ``rough``, ``failing``, ``unknown``)
        with the caveat to show beside it. Windows of every size unless ``window`` is given."""
        self.config.model(model)
        size = parse_duration(window) if isinstance(window, str) else window
        return load_backtest(self.store, model, size, last)

    def label_history(self, model: str, event_id: str) -> pa.Table:
        """Every label received for one event, oldest first (corrections included)."""
        t = self.store.table(spec_for("labels", self.config.model(model)).table)
        rows = t.filter(t.event_id == event_id).order_by([t[INGESTED_AT], t[BATCH]])
        return self.store.execute(rows)

    def outcomes(self, model: str) -> ir.Table:
        """The outcome in force per key (event and outcome, or time and outcome)."""
        return latest_per_key(
            self.store.table(spec_for("outcomes", self.config.model(model)).table), "wk_key"
        )

    def reference(self, model: str, version: str | None = None) -> ir.Table:
        """The rows of the newest reference set for a model version (default: the config's)."""
        cfg = self.config.model(model)
        return stored.reference_rows(self.store, cfg, version or cfg.version)

    def quarantine(
        self, model: str, *, kind: Kind | None = None, reason: str | None = None, limit: int = 100
    ) -> pa.Table:
        self.config.model(model)
        q = self.store.table(QUARANTINE)
        expr = q.filter(q.model == model)
        if kind is not None:
            expr = expr.filter(expr.kind == kind)
        if reason is not None:
            expr = expr.filter(expr.reason == reason)
        expr = expr.order_by([ibis.desc(expr.wk_ingested_at), expr.row_number]).limit(limit)
        return self.store.execute(
            expr.select("kind", "reason", "detail", "row_number", "raw", "source", "wk_ingested_at")
        )

    def versions(self, model: str) -> list[str]:
        """The model versions that served the stored events."""
        events = self.events(model)
        found = self.events_store.execute(events.select(MODEL_VERSION).distinct())
        return sorted(v for v in found.column(0).to_pylist() if v)

    def runs(self, model: str | None = None, *, limit: int = 100) -> list[dict[str, Any]]:
        """Recent runs, newest first: when, status, windows and what they noted."""
        if model is not None:
            self.config.model(model)
        t = self.store.table(RUNS)
        expr = t if model is None else t.filter(t.model == model)
        found = self.store.execute(expr.order_by(ibis.desc("finished_at")).limit(limit))
        return list(found.to_pylist())

    def count(self, model: str, kind: Kind) -> int:
        table = self.store.table(spec_for(kind, self.config.model(model)).table)
        return int(self.store.scalar(table.count()))


def open(
    config: str | Path | Config | None = None,
    clock: Clock = _wall_clock,
    events_backend: Any = None,
) -> Workspace:
    """Open the workspace of a config file (default: $WATCHKEEPER_CONFIG or ./watchkeeper.yaml)."""
    return Workspace.open(config, clock, events_backend)
