"""Live probes: the VPC as deployed — subnets per AZ (S3), NAT gateways and security groups (S6),
VPC endpoints (S21).

A subnet is *public* when its route table (its own, else the VPC's main one)
sends 0.0.0.0/0 to an internet gateway, *private* when that route goes to a
NAT gateway: what the routes do, not what the subnet is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from finks.checks import CheckContext, Evidence
from validation.aws.live import Live

DEFAULT_ROUTE = "0.0.0.0/0"


@dataclass(frozen=True)
class Subnet:
    id: str
    name: str
    zone: str
    tier: str  # public | private | isolated
    target: str  # where 0.0.0.0/0 goes: igw-…, nat-…, or ""
    route_table: str
    maps_public_ip: bool

    @property
    def label(self) -> str:
        return f"{self.id} ({self.name})" if self.name else self.id


def _name(resource: dict[str, Any]) -> str:
    return next((t["Value"] for t in resource.get("Tags", []) if t["Key"] == "Name"), "")


def subnets(live: Live, vpc: str) -> list[Subnet]:
    """The VPC's subnets, each with the tier its routes give it."""
    ec2 = live.client("ec2")
    vpc_filter = [{"Name": "vpc-id", "Values": [vpc]}]
    tables = ec2.describe_route_tables(Filters=vpc_filter)["RouteTables"]
    main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations", []))), None)
    by_subnet = {a["SubnetId"]: t for t in tables for a in t.get("Associations", []) if a.get("SubnetId")}
    found = []
    for s in ec2.describe_subnets(Filters=vpc_filter)["Subnets"]:
        table = by_subnet.get(s["SubnetId"], main) or {}
        route: dict[str, Any] = next((r for r in table.get("Routes", []) if r.get("DestinationCidrBlock") == DEFAULT_ROUTE
                      and r.get("State", "active") == "active"), {})
        target = route.get("GatewayId") or route.get("NatGatewayId") or ""
        tier = "public" if target.startswith("igw-") else "private" if target.startswith("nat-") else "isolated"
        found.append(Subnet(s["SubnetId"], _name(s), s["AvailabilityZone"], tier, target,
                            table.get("RouteTableId", ""), bool(s.get("MapPublicIpOnLaunch"))))
    return sorted(found, key=lambda x: (x.zone, x.tier, x.id))


# ---- S3: VPC with public/private subnets -----------------------------------------------
def vpc_public_private_subnets(ctx: CheckContext) -> Evidence:
    """Every availability zone of the stack has a public subnet (routed to the internet gateway)
    and a private one (routed to a NAT gateway); no private subnet hands out public IPs."""
    live = Live.of(ctx)
    vpc = live.vpc_id()
    found = subnets(live, vpc)
    zones = live.config.availability_zones
    problems = []
    if not found:
        problems.append(f"VPC {vpc} has no subnets")
    for zone in zones:
        for tier, route in (("public", "an internet gateway"), ("private", "a NAT gateway")):
            if not any(s.zone == zone and s.tier == tier for s in found):
                problems.append(f"VPC {vpc}: {zone} has no {tier} subnet (one whose 0.0.0.0/0 route goes to {route})")
    for s in found:
        if s.tier == "isolated":
            problems.append(f"subnet {s.label} in {s.zone} has no active default route "
                            f"(route table {s.route_table or 'none'}): neither public nor private")
        if s.tier == "private" and s.maps_public_ip:
            problems.append(f"private subnet {s.label} assigns public IPs on launch")
    figures = {"vpc": vpc, "zones": zones,
               "subnets": [{"id": s.id, "name": s.name, "zone": s.zone, "tier": s.tier, "default_route": s.target}
                           for s in found]}
    if problems:
        raise live.fail(problems, figures)
    public = sorted({s.target for s in found if s.tier == "public"})
    return live.evidence(f"VPC {vpc}: public and private subnets in {', '.join(zones)}; public routed to "
                         f"{', '.join(public)}, private through NAT", figures)


# ---- S6: NAT gateways ---------------------------------------------------------------------
def nat_gateways_available(ctx: CheckContext) -> Evidence:
    """Every private subnet's default route goes to an *available* NAT gateway; where the stack
    wants one per zone (``natGateways: per_az``, prod), to the one in its own zone."""
    live = Live.of(ctx)
    vpc = live.vpc_id()
    ec2 = live.client("ec2")
    nats = {n["NatGatewayId"]: n for n in ec2.describe_nat_gateways(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NatGateways"]}
    zone_of = {s["SubnetId"]: s["AvailabilityZone"] for s in ec2.describe_subnets(
        SubnetIds=sorted({n["SubnetId"] for n in nats.values()}))["Subnets"]} if nats else {}
    per_az = live.config.nat_gateways == "per_az"
    private = [s for s in subnets(live, vpc) if s.tier != "public"]
    problems = []
    if not private:
        problems.append(f"VPC {vpc} has no private subnet to route through NAT")
    for s in private:
        nat = nats.get(s.target)
        if nat is None:
            problems.append(f"private subnet {s.label}: 0.0.0.0/0 goes to {s.target or 'nothing'}, not a NAT gateway of VPC {vpc}")
        elif nat["State"] != "available":
            problems.append(f"NAT gateway {s.target} (route of {s.label}) is {nat['State']}, not available")
        elif per_az and zone_of.get(nat["SubnetId"]) != s.zone:
            problems.append(f"private subnet {s.label} in {s.zone} routes through NAT {s.target} in "
                            f"{zone_of.get(nat['SubnetId'])}: stack {ctx.env} wants a NAT gateway per zone (natGateways: per_az)")
    figures = {"vpc": vpc, "per_az": per_az,
               "nat_gateways": {k: {"state": v["State"], "zone": zone_of.get(v["SubnetId"])} for k, v in nats.items()},
               "routes": {s.id: s.target for s in private}}
    if problems:
        raise live.fail(problems, figures)
    return live.evidence(f"{len(nats)} NAT gateway(s) available in VPC {vpc}; every private subnet routes through one"
                         + (" in its own zone" if per_az else ""), figures,
                         ["its NAT gateways report 'available' but route no traffic"])


# ---- S6: security groups ------------------------------------------------------------------
def _rules(group: dict[str, Any], direction: str) -> list[str]:
    """One line per permission: `tcp 5432 from sg-…` / `tcp 443 from 0.0.0.0/0`."""
    key = "IpPermissions" if direction == "in" else "IpPermissionsEgress"
    word = "from" if direction == "in" else "to"
    lines = []
    for perm in group.get(key, []):
        proto = perm.get("IpProtocol", "-1")
        ports = "all" if proto == "-1" else (str(perm.get("FromPort")) if perm.get("FromPort") == perm.get("ToPort")
                                            else f"{perm.get('FromPort')}-{perm.get('ToPort')}")
        head = f"{'all' if proto == '-1' else proto} {ports}"
        lines += [f"{head} {word} {p['GroupId']}" for p in perm.get("UserIdGroupPairs", [])]
        lines += [f"{head} {word} {r['CidrIp']}" for r in perm.get("IpRanges", [])]
        lines += [f"{head} {word} {r['CidrIpv6']}" for r in perm.get("Ipv6Ranges", [])]
        lines += [f"{head} {word} {r['PrefixListId']}" for r in perm.get("PrefixListIds", [])]
    return sorted(lines)


def security_group_chain(ctx: CheckContext) -> Evidence:
    """Ingress is exactly the chain internet → ALB → Prefect server (ECS) → RDS, and the pipeline
    tasks take none: any other rule (PostgreSQL from the internet, SSH, …) is drift."""
    from infra.components.database import DB_PORT
    from infra.components.ecs import PREFECT_PORT

    live = Live.of(ctx)
    roles = live.security_groups()
    missing = [r for r in ("alb", "prefect_server", "database", "tasks") if r not in roles]
    if missing:
        raise live.fail([f"no security group for {', '.join(missing)} found ({live.found_by})"], {"groups": roles})
    described = live.client("ec2").describe_security_groups(GroupIds=sorted(set(roles.values())))["SecurityGroups"]
    groups = {g["GroupId"]: g for g in described}
    alb, server, db = roles["alb"], roles["prefect_server"], roles["database"]
    # What the program allows in, per group (infra/components/prefect_server.py).
    expected = {
        "alb": {"tcp 443 from 0.0.0.0/0", "tcp 80 from 0.0.0.0/0"},
        "prefect_server": {f"tcp {PREFECT_PORT} from {alb}"},
        "database": {f"tcp {DB_PORT} from {server}"},
        "tasks": set(),
    }
    problems = []
    seen: dict[str, dict[str, list[str]]] = {}
    for role, allowed in expected.items():
        gid = roles[role]
        if gid not in groups:
            problems.append(f"{role} security group {gid} does not exist")
            continue
        ingress, egress = _rules(groups[gid], "in"), _rules(groups[gid], "out")
        seen[role] = {"id": [gid], "ingress": ingress, "egress": egress}
        extra, lacking = sorted(set(ingress) - allowed), sorted(allowed - set(ingress))
        if extra:
            problems.append(f"{role} security group {gid} allows {', '.join(extra)}: only "
                            f"{', '.join(sorted(allowed)) or 'no ingress'} belongs there")
        if lacking:
            problems.append(f"{role} security group {gid} lacks {', '.join(lacking)}")
    if alb in groups and f"tcp {PREFECT_PORT} to {server}" not in _rules(groups[alb], "out"):
        problems.append(f"ALB security group {alb} cannot reach the Prefect server ({server}) on {PREFECT_PORT}")
    if server in groups and f"tcp {DB_PORT} to {db}" not in _rules(groups[server], "out"):
        problems.append(f"Prefect server security group {server} cannot reach PostgreSQL ({db}) on {DB_PORT}")
    figures = {"groups": seen}
    if problems:
        raise live.fail(problems, figures)
    return live.evidence(f"security groups chain internet → ALB ({alb}) :443 → Prefect server ({server}) "
                         f":{PREFECT_PORT} → RDS ({db}) :{DB_PORT}, nothing else in; tasks ({roles['tasks']}) take no ingress",
                         figures, ["security groups are recorded, not enforced on traffic"])


# ---- S21: VPC endpoints -------------------------------------------------------------------------
def vpc_endpoints(ctx: CheckContext) -> Evidence:
    """The S3 gateway endpoint serves every private route table; each interface endpoint the
    program declares (Secrets Manager, ECR, CloudWatch Logs) sits in every private subnet."""
    from infra.components.networking import INTERFACE_ENDPOINTS

    live = Live.of(ctx)
    vpc = live.vpc_id()
    region = live.settings.region
    found = live.client("ec2").describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]
    # A deleted endpoint lingers in the listing for a while: it is gone all the same.
    by_service = {e["ServiceName"]: e for e in found if e.get("State", "").lower() not in ("deleted", "deleting")}
    private = [s for s in subnets(live, vpc) if s.tier == "private"]
    problems = []
    wanted = {f"com.amazonaws.{region}.s3": "Gateway", **{f"com.amazonaws.{region}.{s}": "Interface" for s in INTERFACE_ENDPOINTS}}
    for service, kind in wanted.items():
        endpoint = by_service.get(service)
        if endpoint is None:
            problems.append(f"VPC {vpc} has no {kind.lower()} endpoint for {service}: its traffic leaves through NAT")
            continue
        if endpoint.get("State", "available").lower() != "available":
            problems.append(f"endpoint {endpoint['VpcEndpointId']} ({service}) is {endpoint['State']}")
        if kind == "Gateway":
            lacking = sorted({s.route_table for s in private} - set(endpoint.get("RouteTableIds", [])))
            if lacking:
                problems.append(f"S3 gateway endpoint {endpoint['VpcEndpointId']} is not on route tables {lacking}")
        else:
            lacking = sorted({s.id for s in private} - set(endpoint.get("SubnetIds", [])))
            if lacking:
                problems.append(f"endpoint {endpoint['VpcEndpointId']} ({service}) is not in private subnets {lacking}")
            if not endpoint.get("PrivateDnsEnabled"):
                problems.append(f"endpoint {endpoint['VpcEndpointId']} ({service}) has private DNS off: clients miss it")
    figures = {"vpc": vpc, "endpoints": {s: e["VpcEndpointId"] for s, e in by_service.items()}}
    if problems:
        raise live.fail(problems, figures)
    short = sorted(s.split(f"{region}.", 1)[1] for s in wanted)
    return live.evidence(f"VPC {vpc}: endpoints for {', '.join(short)} in every private subnet / route table",
                         figures, ["endpoints are recorded; no traffic flows through them"])
