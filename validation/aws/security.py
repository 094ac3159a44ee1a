"""Live probes for S21: GuardDuty and AWS Config as deployed (VPC endpoints: validation.aws.network)."""

from __future__ import annotations

from finks.checks import CheckContext, Evidence
from validation.aws.live import Live


def guardduty_enabled(ctx: CheckContext) -> Evidence:
    """A GuardDuty detector in the stack's region is ENABLED (the stack's own, when its outputs name it)."""
    live = Live.of(ctx)
    gd = live.client("guardduty")
    detectors = gd.list_detectors().get("DetectorIds", [])
    want = live.output("guardduty_detector_id")
    figures = {"region": live.settings.region, "detectors": detectors}
    if not detectors:
        raise live.fail([f"GuardDuty has no detector in {live.settings.region}: threats go unnoticed"], figures)
    if want and want not in detectors:
        raise live.fail([f"GuardDuty detector {want} (the stack's) is gone; the region has {detectors}"], figures)
    chosen = want or detectors[0]
    detector = gd.get_detector(DetectorId=chosen)
    figures.update(detector=chosen, status=detector.get("Status"), frequency=detector.get("FindingPublishingFrequency"))
    if detector.get("Status") != "ENABLED":
        raise live.fail([f"GuardDuty detector {chosen} is {detector.get('Status')}, not ENABLED"], figures)
    return live.evidence(f"GuardDuty detector {chosen} ENABLED in {live.settings.region} "
                         f"(findings every {detector.get('FindingPublishingFrequency')})", figures,
                         ["the detector's settings are stored; no finding is ever raised"])


def config_recording(ctx: CheckContext) -> Evidence:
    """The AWS Config recorder records every supported resource and is on, a delivery channel takes
    its snapshots, and every managed rule the program declares is in place."""
    from infra.components.security import CONFIG_RULES

    live = Live.of(ctx)
    config = live.client("config")
    recorders = config.describe_configuration_recorders().get("ConfigurationRecorders", [])
    statuses = {s["name"]: s for s in config.describe_configuration_recorder_status().get("ConfigurationRecordersStatus", [])}
    channels = config.describe_delivery_channels().get("DeliveryChannels", [])
    rules = {r.get("Source", {}).get("SourceIdentifier") for r in
             config.get_paginator("describe_config_rules").paginate().build_full_result().get("ConfigRules", [])}
    wanted = set(CONFIG_RULES) | ({"RDS_MULTI_AZ_SUPPORT"} if live.config.db_multi_az else set())
    figures = {"recorders": [r["name"] for r in recorders], "recording": {n: s.get("recording") for n, s in statuses.items()},
               "delivery_channels": [c["name"] for c in channels], "rules": sorted(r for r in rules if r)}
    problems = []
    if not recorders:
        problems.append(f"AWS Config has no configuration recorder in {live.settings.region}")
    for r in recorders:
        if not r.get("recordingGroup", {}).get("allSupported"):
            problems.append(f"Config recorder {r['name']} does not record every supported resource type")
        if not statuses.get(r["name"], {}).get("recording"):
            problems.append(f"Config recorder {r['name']} is stopped: changes go unrecorded")
    if not channels:
        problems.append("AWS Config has no delivery channel: the recorder has nowhere to deliver")
    for rule in sorted(wanted - rules):
        problems.append(f"AWS Config rule {rule} is not deployed")
    if problems:
        raise live.fail(problems, figures)
    return live.evidence(f"Config recorder {', '.join(figures['recorders'])} on, delivering to "
                         f"{', '.join(figures['delivery_channels'])}; {len(wanted)} managed rules in place", figures,
                         ["the emulator stores the recorder and rules; it evaluates no rule"])
