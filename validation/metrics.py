"""Check for S20: the pipeline's custom metrics reach CloudWatch (the moto server locally)."""

from __future__ import annotations

from finks.checks import CheckContext, CheckFailed, Evidence
from validation import support
from validation.pipeline import run_daily_pipeline

WANTED = frozenset({"RecordsProcessed", "PipelineLatency", "DataQualityScore"})


def custom_metrics_emitted(ctx: CheckContext) -> Evidence:
    from core.aws import client as aws_client
    from flows import metrics

    settings = support.stack(ctx.settings)
    cw = aws_client(settings, "cloudwatch")

    def present() -> set[str]:
        return {m["MetricName"] for m in cw.list_metrics(Namespace=metrics.NAMESPACE)["Metrics"]}

    if not WANTED <= present():
        run_daily_pipeline(ctx)  # the pipeline emits them; moto keeps metrics in memory only
    found = present()
    if not WANTED <= found:
        raise CheckFailed(f"metrics missing in CloudWatch namespace {metrics.NAMESPACE}: {sorted(WANTED - found)}")
    return Evidence(f"CloudWatch namespace {metrics.NAMESPACE} has {', '.join(sorted(WANTED))} (emulator)",
                    figures={"metrics": sorted(found)})
