"""Powertools Logger and Metrics, shared by every function (service and namespace come from the environment)."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

# A request that counted nothing (a GET, say) is normal: don't warn about an empty metric set on every one.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger()  # POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL
metrics = Metrics()  # POWERTOOLS_METRICS_NAMESPACE


def count(name: str, value: int | float = 1) -> None:
    """Add a count metric (flushed by ``@metrics.log_metrics`` at the end of the invocation)."""
    if value:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
