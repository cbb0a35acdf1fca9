"""The commented example ``watchkeeper init`` writes (it must load without problems).

Its alerting section is also the default rules ``watchkeeper init --from`` writes
(config/rules.py reads EXAMPLE_TEMPLATE): the rules' feature lists are a placeholder,
FEATURES, filled here with the example's features and there with the inferred ones."""

FEATURES = "<features>"
EXAMPLE_FEATURES = "amount, merchant_category, country, account_age_days, is_new_user"

EXAMPLE_TEMPLATE = """\
# watchkeeper.yaml: what to monitor and where the data lives.
# Durations are written as a number and a unit: 30s, 15m, 1h, 14d, 2w.

engine:
  # The default store is an embedded DuckDB file beside this config; no server needed.
  path: watchkeeper.duckdb
  # Or any engine Ibis speaks, by URL (give path or url, not both):
  # url: duckdb:///var/lib/watchkeeper/store.duckdb

models:
  - name: fraud                     # lowercase letters, digits, underscores
    task: binary_classification     # binary_classification, multiclass_classification,
                                    # regression or ranking
    owner: risk-ml                  # the team that answers for this model
    version: "1"                    # used when events carry no model_version column
    threshold: 0.5                  # decision threshold on the score (binary only)
    columns:                        # column names in your logged events, by role
      event_id: event_id            # unique per prediction; re-sending it changes nothing
      timestamp: timestamp          # event time (UTC if no zone is given)
      features:
        - name: amount
          kind: numeric             # numeric, categorical or boolean
          range: [0, 50000]         # values outside are quarantined as out_of_range
          nullable: false           # a missing value is quarantined as null_in_required
        - name: merchant_category
          kind: categorical         # without `values` any category is accepted
        - name: country
          kind: categorical
          values: [US, GB, DE, FR, BR, IN]   # closes the set: others are unknown_category
        - name: account_age_days
          kind: numeric
        - name: is_new_user
          kind: boolean
      score: score                  # the model's probability of the positive class
      prediction: prediction        # leave it out to judge decisions by score >= threshold;
                                    # declared, every event must carry it (but failed
                                    # requests, whose status is not ok, may lack outputs)
      segments: [region, device]    # slices to monitor separately
      sensitive: [age_band]         # protected groups for fairness
      latency: latency_ms           # milliseconds
      status: status                # ok, error, timeout, ...
      model_version: model_version
      metadata: [feature_version]   # travels with every event
    labels:
      column: label                 # 0/1 (or true/false) in label files
      timestamp: label_timestamp    # when the truth became known
      expected_coverage: 0.9        # share of events that eventually get a label
      max_delay: 30d                # after this a window's performance is final
    outcomes:                       # business results, per event or as a time series
      - name: confirmed_fraud
      - name: manual_review
    costs:
      false_positive: 5             # cost of reviewing a legitimate transaction
      false_negative: 120           # cost of missed fraud
      true_positive_value: 100
    monitoring:
      window: 1d                    # data and model metrics per day; rules with their own
                                    # window (the service rules below) get runs of theirs

alerting:
  # Where alerts link to (the dashboard of `watchkeeper serve`).
  dashboard_url: http://127.0.0.1:8765
  # A rule selects metrics (patterns with * and ?) and says when one is unusual: above or
  # below a threshold, changed from the reference (against: reference), or outside a
  # rolling baseline (against: baseline). `for`: consecutive windows (or a duration) before
  # it fires; `keep_firing_for`: how long it stays after. Severity: info, ticket or page.
  # Owner: data, model, infrastructure, business, or a team; receivers route on it.
  rules:
    # Severity follows harm: a page when something is broken now (a feature arriving
    # broken, a model version doing worse, performance falling on labels, the service
    # failing); a ticket when something deserves a look (drift, estimates, segments,
    # fairness, business outcomes). Service rules judge hourly windows; a broken feature
    # or a new version's scores, six-hourly ones (enough rows to compare distributions,
    # each version's, on a model with a few hundred predictions an hour; set 1h when
    # traffic allows); the rest, the model's daily windows.
    # -- data -----------------------------------------------------------------------------
    - name: input_broken
      severity: page
      owner: data
      window: 6h
      description: a feature arrives broken (missing in bulk, out of its range, unseen
        values, or moved by several standard deviations, as a unit change does)
      require: any
      group_by: [column]            # one alert per broken feature
      conditions:
        - {metric: missing_rate, against: reference, change: absolute, above: 0.25,
           min_sample_size: 50}
        - {metric: out_of_range_rate, above: 0.25, min_sample_size: 50}
        - {metric: unseen_rate, above: 0.1, min_sample_size: 50}
        - metric: drift_wasserstein
          column: [<features>]
          above: 1.5
          min_sample_size: 50
      for: 2
    - name: schema_change
      severity: ticket
      owner: data
      description: logged events gained or lost columns
      conditions:
        - {metric: schema_changes, status: [changed]}
    - name: quarantine_spike
      severity: ticket
      owner: data
      description: many more rows than usual were refused at ingestion
      conditions:
        - metric: quarantined_rows
          against: baseline
          direction: above
          baseline: {windows: 24, k: 4, min_history: 6}
        - {metric: quarantined_rows, above: 20}   # and more than a handful
      require: all
      group_by: [column]
    - name: missing_values
      severity: ticket
      owner: data
      description: a feature is missing far more often than in training
      conditions:
        - {metric: missing_rate, against: reference, change: absolute, above: 0.05,
           min_sample_size: 100}
      for: 2
    - name: feature_drift
      severity: ticket
      owner: data
      description: a feature's distribution moved away from the training data
      conditions:
        - metric: drift
          column: [<features>]
          status: [drifted]
      for: 3                        # each drift test fires on noise 5% of the time
      keep_firing_for: 2
    # -- model ----------------------------------------------------------------------------
    - name: model_change
      severity: page
      owner: model
      window: 6h
      description: a model version's scores differ from the established version's on the
        same traffic
      group_by: [version]
      conditions:
        - {metric: version_shift, column: [score, prediction], status: [drifted]}
      for: 2
      keep_firing_for: 1d           # a rollout lasts: a quiet window or two is not its end
    - name: performance_drop
      severity: page
      owner: model
      description: performance measured on labels fell below the reference's, beyond
        sampling noise
      group_by: [version]           # a worse version has its own alert beside the others'
      require: any
      conditions:
        - {metric: roc_auc, against: reference, below: -0.05, min_sample_size: 300,
           interval_excludes: true}
        - {metric: precision, against: reference, below: -0.25, min_sample_size: 300,
           interval_excludes: true}
      for: 2
    - name: estimated_performance_drop
      severity: ticket
      owner: model
      description: ROC AUC estimated before labels fell beyond the reference's band
      conditions:
        - {metric: estimated_roc_auc, status: [degraded], min_sample_size: 500}
      for: 2
    - name: prediction_drift
      severity: ticket
      owner: model
      description: the model's scores moved away from the reference
      conditions:
        - {metric: drift, column: [score, prediction], status: [drifted]}
      for: 3
      keep_firing_for: 2
    - name: calibration
      severity: ticket
      owner: model
      description: scores no longer match observed fraud rates
      conditions:
        - {metric: expected_calibration_error, against: reference, change: absolute,
           above: 0.03, min_sample_size: 500}
      for: 2
    - name: segment_gap
      severity: ticket
      owner: model
      description: the model does worse in one segment than in the rest
      group_by: [segment]           # one alert per segment, whichever metrics are worse
      conditions:
        - {metric: segment_gap, segment: any, status: [worse]}
      for: 3
      keep_firing_for: 2
    - name: weak_slice
      severity: ticket
      owner: model
      description: the model got worse on a slice (one column's value, or two together)
      group_by: [metric]            # one alert for the model; the evidence names the slice
      conditions:
        - {metric: weak_slice, status: [worse]}
      for: 2
      keep_firing_for: 2
    - name: fairness_gap
      severity: ticket
      owner: model
      description: a protected group's selection or true positive rate moved away from
        the whole traffic's
      group_by: [segment]
      require: any
      conditions:
        - metric: ratio_to_overall
          column: [positive_rate, recall]
          segment: any
          against: baseline
          # the median of the last two weeks, so that a gap's first day does not hide its
          # second; a group of a tenth of the traffic has a few hundred decisions a day
          baseline: {windows: 14, method: median_mad, k: 3, min_change: 0.2}
          max_p_value: 0.01
          min_sample_size: 100
      for: 2
    # Drift alone opens a ticket; drift with a calibration slip and a falling KPI pages.
    - name: model_degrading
      severity: ticket
      owner: model
      description: several signals point at the model
      conditions:
        - {metric: drift, column: "*", segment: any, status: [drifted]}
        - {metric: expected_calibration_error, against: reference, change: absolute,
           above: 0.03}
        - metric: outcome_rate
          column: "*"               # any outcome the model's decisions lead to
          against: baseline
          direction: both
          baseline: {windows: 14}
          mature_only: true         # outcomes arrive late: judge complete windows
      require: 2
      escalate: {require: 3, severity: page}
      for: 2
    # -- infrastructure -------------------------------------------------------------------
    - name: latency
      severity: page
      owner: infrastructure
      window: 1h
      description: the slowest predictions are much slower than usual
      conditions:
        - metric: latency_p99
          against: baseline
          direction: above
          # the same hour of the last 7 days (traffic has a daily cycle), and twice as slow
          # beyond doubt: a p99 of an hour's few dozen requests is its slowest one, so the
          # quantile's confidence interval must clear the doubled level
          baseline: {windows: 7, seasonal: 1d, method: trimmed_mean_std, k: 4, min_history: 3,
                     min_change: 1.0}
          interval_excludes: true
      keep_firing_for: 3h           # one alert for an incident, not one per bad hour
    - name: error_rate
      severity: page
      owner: infrastructure
      window: 1h
      description: the model service fails requests
      conditions:
        - {metric: error_rate, above: 0.05, min_sample_size: 50, interval_excludes: true}
      keep_firing_for: 3h
    - name: traffic_drop
      severity: page
      owner: infrastructure
      description: far fewer predictions than usual
      conditions:
        - {metric: volume_ratio, below: 0.5}
      for: 2
    - name: traffic_surge
      severity: ticket
      owner: infrastructure
      conditions:
        - {metric: volume_ratio, above: 3}
      for: 2
    # -- business -------------------------------------------------------------------------
    - name: business_kpi_change
      severity: ticket
      owner: business
      description: an outcome the model exists for moved away from its usual level (a
        conversion falling, or chargebacks rising)
      conditions:
        - metric: outcome_rate
          column: "*"
          against: baseline
          direction: both
          # the median of the recent windows, which the change's first days do not move
          # (a mean and standard deviation would take in the first day's drop and miss
          # the second)
          baseline: {windows: 24, method: median_mad, k: 4, min_change: 0.2}
          mature_only: true
      for: 2
    - name: cost_of_mistakes
      severity: ticket
      owner: business
      description: the decisions' mistakes cost much more than usual
      conditions:
        - metric: cost
          against: baseline
          direction: above
          baseline: {windows: 14, method: median_mad, k: 4, min_change: 0.5}
          mature_only: true
      for: 2
  # A page mutes the tickets it explains; an outage mutes the data alerts it causes.
  inhibit:
    - {source: {severity: page}, target: {severity: ticket}, equal: [model, owner]}
    - {source: {owner: infrastructure, severity: page}, target: {owner: data},
       equal: [model]}
  receivers:
    - {name: log, type: log}
    # - {name: oncall, type: alertmanager, url: "http://127.0.0.1:9093",
    #    match: {severity: page}}
    # - {name: data_team, type: slack, url: "https://hooks.slack.com/services/...",
    #    match: {owner: data}}
    # - {name: tickets, type: webhook, url: "https://tickets.example.com/hook"}
"""

EXAMPLE_CONFIG = EXAMPLE_TEMPLATE.replace(FEATURES, EXAMPLE_FEATURES)

__all__ = ["EXAMPLE_CONFIG", "EXAMPLE_FEATURES", "EXAMPLE_TEMPLATE", "FEATURES"]
