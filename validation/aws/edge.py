"""Live probe for S6: the Prefect ALB with SSL, as deployed.

The ALB is found by the DNS name the stack recorded (``prefect_alb_dns``), else by the
program's tags. What it must be: active, internet-facing in the VPC's public subnets (by their
routes: :func:`validation.aws.network.subnets`), an HTTPS listener on 443 whose certificate is
ISSUED for the program's domain and not ending within :data:`CERT_MIN_DAYS` days, with a policy
that offers nothing older than TLS 1.2 (the policy's own protocol list, from
DescribeSslPolicies), forwarding to a target group; and port 80 redirecting to HTTPS.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from finks.checks import CheckContext, Evidence
from validation.aws.live import Live

CERT_MIN_DAYS = 30  # ACM renews 60 days ahead: a certificate closer to its end than this is not being renewed
MODERN_TLS = {"TLSv1.2", "TLSv1.3"}


def load_balancer(live: Live) -> dict[str, Any]:
    """The stack's ALB: by its recorded DNS name, else the one application load balancer tagged as the stack's."""
    elb = live.client("elbv2")
    found = [lb for page in elb.get_paginator("describe_load_balancers").paginate() for lb in page["LoadBalancers"]]
    dns = live.output("prefect_alb_dns")
    if dns:
        mine = [lb for lb in found if lb.get("DNSName") == dns]
        if not mine:
            raise live.fail([f"no load balancer answers to {dns}, the DNS name the stack recorded"], {"dns": dns})
        return mine[0]
    albs = [lb for lb in found if lb.get("Type") == "application"]
    if albs:
        arns = [lb["LoadBalancerArn"] for lb in albs]
        tagged = set()
        for start in range(0, len(arns), 20):  # DescribeTags takes 20 ARNs a call
            for desc in elb.describe_tags(ResourceArns=arns[start:start + 20])["TagDescriptions"]:
                if live.tagged(desc.get("Tags")):
                    tagged.add(desc["ResourceArn"])
        mine = [lb for lb in albs if lb["LoadBalancerArn"] in tagged]
        if mine:
            return mine[0]
    raise live.nothing_deployed("application load balancer")


def _certificate(live: Live, arn: str, domain: str, now: dt.datetime) -> tuple[dict[str, Any], list[str]]:
    from botocore.exceptions import ClientError

    try:
        cert = live.client("acm").describe_certificate(CertificateArn=arn)["Certificate"]
    except ClientError:
        return {"arn": arn}, [f"the HTTPS listener's certificate {arn} does not exist in ACM"]
    not_after = cert.get("NotAfter")
    days = (not_after - now).days if isinstance(not_after, dt.datetime) else None
    seen = {"domain": cert.get("DomainName"), "status": cert.get("Status"), "type": cert.get("Type"), "days_left": days}
    problems = []
    if cert.get("Status") != "ISSUED":
        problems.append(f"certificate for {cert.get('DomainName')} is {cert.get('Status')}, not ISSUED"
                        + (": add its DNS validation record (or set finks:hostedZoneId)"
                           if cert.get("Status") == "PENDING_VALIDATION" else ""))
    if days is None or days < CERT_MIN_DAYS:
        problems.append(f"certificate for {cert.get('DomainName')} ends in {days} days (on {not_after}), under "
                        f"{CERT_MIN_DAYS}: it is not being renewed; check its renewal status in ACM")
    names = {cert.get("DomainName"), *(cert.get("SubjectAlternativeNames") or [])}
    if domain not in names:
        problems.append(f"certificate {arn} is for {sorted(n for n in names if n)}, not {domain}")
    return seen, problems


def _policy_protocols(live: Live, name: str) -> list[str]:
    policies = live.client("elbv2").describe_ssl_policies(Names=[name]).get("SslPolicies", [])
    return sorted(policies[0].get("SslProtocols", [])) if policies else []


def alb_https(ctx: CheckContext) -> Evidence:
    """The Prefect ALB serves HTTPS with a valid certificate and a modern TLS policy, and sends HTTP to HTTPS."""
    from validation.aws.network import subnets

    live = Live.of(ctx)
    lb = load_balancer(live)
    name, arn = lb["LoadBalancerName"], lb["LoadBalancerArn"]
    elb = live.client("elbv2")
    now = dt.datetime.now(dt.UTC)
    problems: list[str] = []
    state = (lb.get("State") or {}).get("Code")
    if state != "active":
        problems.append(f"load balancer {name} is {state}, not active")
    if lb.get("Scheme") != "internet-facing":
        problems.append(f"load balancer {name} is {lb.get('Scheme')}, not internet-facing: Prefect's UI is unreachable")
    tiers = {s.id: s.tier for s in subnets(live, lb.get("VpcId") or live.vpc_id())}
    placed = sorted(z["SubnetId"] for z in lb.get("AvailabilityZones", []))
    not_public = [s for s in placed if tiers.get(s) != "public"]
    if not_public:
        problems.append(f"load balancer {name} sits in subnets that do not route to the internet gateway: {not_public}")
    if len(placed) < 2:
        problems.append(f"load balancer {name} spans {len(placed)} subnet(s): an ALB needs two zones")

    listeners = {int(li["Port"]): li for li in elb.describe_listeners(LoadBalancerArn=arn)["Listeners"]}
    figures: dict[str, Any] = {"load_balancer": name, "dns": lb.get("DNSName"), "state": state, "scheme": lb.get("Scheme"),
                               "subnets": placed, "listeners": {p: li.get("Protocol") for p, li in sorted(listeners.items())}}
    https = listeners.get(443)
    if https is None or https.get("Protocol") != "HTTPS":
        problems.append(f"load balancer {name} has no HTTPS listener on 443"
                        + (f" (443 is {https.get('Protocol')}: no certificate)" if https else ""))
    else:
        certs = [c["CertificateArn"] for c in https.get("Certificates", []) if c.get("CertificateArn")]
        if not certs:
            problems.append(f"the HTTPS listener of {name} has no certificate")
        else:
            figures["certificate"], found = _certificate(live, certs[0], live.config.prefect_domain, now)
            problems += found
        policy = https.get("SslPolicy") or ""
        protocols = _policy_protocols(live, policy) if policy else []
        figures["tls_policy"] = {"name": policy, "protocols": protocols}
        old = sorted(set(protocols) - MODERN_TLS)
        if not protocols or old:
            problems.append(f"the HTTPS listener of {name} uses {policy or 'no policy'}, which offers "
                            f"{', '.join(old) or 'no protocol'}: use TLS 1.2+ (ELBSecurityPolicy-TLS13-1-2-2021-06)")
        forwards = [a for a in https.get("DefaultActions", []) if a.get("Type") == "forward"]
        if not forwards:
            problems.append(f"the HTTPS listener of {name} forwards to no target group")
    plain = listeners.get(80)
    redirect = next((a.get("RedirectConfig") or {} for a in (plain or {}).get("DefaultActions", [])
                     if a.get("Type") == "redirect"), None)
    if plain is None:
        problems.append(f"load balancer {name} has no listener on 80: http:// links fail instead of redirecting")
    elif not redirect or redirect.get("Protocol") != "HTTPS" or str(redirect.get("Port")) != "443":
        problems.append(f"the HTTP listener of {name} does not redirect to HTTPS:443 "
                        f"({[a.get('Type') for a in plain.get('DefaultActions', [])]})")
    else:
        figures["redirect"] = redirect.get("StatusCode")
    if problems:
        raise live.fail(problems, figures)
    cert = figures["certificate"]
    return live.evidence(
        f"ALB {name} active, internet-facing in {len(placed)} public subnets; HTTPS:443 with the ISSUED certificate for "
        f"{cert['domain']} ({cert['days_left']} days left) under {figures['tls_policy']['name']} "
        f"({', '.join(figures['tls_policy']['protocols'])}); HTTP:80 redirects ({figures['redirect']})", figures,
        ["the emulator validates no certificate by DNS: the one read was imported for the domain (AWS issues its own)",
         "no TLS handshake is made: the listener's policy and certificate are read, not negotiated"])
