"""Networking: VPC, public/private subnets per zone, IGW, NAT, VPC endpoints, flow logs."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.base import Common, FinksComponent

# Interface endpoints keep ECR pulls, secrets and logs off the NAT gateways
# (cheaper, and traffic never leaves the AWS network).
INTERFACE_ENDPOINTS: tuple[str, ...] = ("secretsmanager", "ecr.api", "ecr.dkr", "logs")


@dataclass(frozen=True)
class NetworkingArgs:
    common: Common
    cidr: str
    availability_zones: list[str]
    nat_per_az: bool
    flow_logs_bucket_arn: pulumi.Input[str] | None = None


def carve(cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """Public and private /20s: public first, private from the upper half."""
    blocks = list(ipaddress.ip_network(cidr).subnets(new_prefix=20))
    half = len(blocks) // 2
    return [str(b) for b in blocks[:zones]], [str(b) for b in blocks[half : half + zones]]


class Networking(FinksComponent):
    kind = "Networking"

    def __init__(self, name: str, args: NetworkingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        c = args.common
        self.vpc = aws.ec2.Vpc(
            self.child("vpc"),
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=c.with_name(self.child("vpc")),
            opts=self.opts(),
        )
        public_cidrs, private_cidrs = carve(args.cidr, len(args.availability_zones))
        self.public_subnets: list[aws.ec2.Subnet] = []
        self.private_subnets: list[aws.ec2.Subnet] = []
        for i, az in enumerate(args.availability_zones):
            suffix = az[-1]
            self.public_subnets.append(
                aws.ec2.Subnet(
                    self.child(f"public-{suffix}"),
                    vpc_id=self.vpc.id,
                    cidr_block=public_cidrs[i],
                    availability_zone=az,
                    # Only the ALB and NAT gateways live here; nothing needs an
                    # automatic public IP.
                    map_public_ip_on_launch=False,
                    tags={**c.with_name(self.child(f"public-{suffix}")), "Tier": "public"},
                    opts=self.opts(),
                )
            )
            self.private_subnets.append(
                aws.ec2.Subnet(
                    self.child(f"private-{suffix}"),
                    vpc_id=self.vpc.id,
                    cidr_block=private_cidrs[i],
                    availability_zone=az,
                    map_public_ip_on_launch=False,
                    tags={**c.with_name(self.child(f"private-{suffix}")), "Tier": "private"},
                    opts=self.opts(),
                )
            )

        self.igw = aws.ec2.InternetGateway(
            self.child("igw"), vpc_id=self.vpc.id, tags=c.with_name(self.child("igw")), opts=self.opts()
        )
        public_rt = aws.ec2.RouteTable(
            self.child("public-rt"),
            vpc_id=self.vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=self.igw.id)],
            tags=c.with_name(self.child("public-rt")),
            opts=self.opts(),
        )
        for subnet, az in zip(self.public_subnets, args.availability_zones):
            aws.ec2.RouteTableAssociation(
                self.child(f"public-rta-{az[-1]}"), subnet_id=subnet.id, route_table_id=public_rt.id, opts=self.opts()
            )

        nat_zones = args.availability_zones if args.nat_per_az else args.availability_zones[:1]
        self.nat_gateways: list[aws.ec2.NatGateway] = []
        for i, az in enumerate(nat_zones):
            eip = aws.ec2.Eip(
                self.child(f"nat-eip-{az[-1]}"), domain="vpc", tags=c.with_name(self.child(f"nat-eip-{az[-1]}")),
                opts=self.opts(),
            )
            self.nat_gateways.append(
                aws.ec2.NatGateway(
                    self.child(f"nat-{az[-1]}"),
                    allocation_id=eip.id,
                    subnet_id=self.public_subnets[i].id,
                    connectivity_type="public",
                    tags=c.with_name(self.child(f"nat-{az[-1]}")),
                    opts=self.opts(depends_on=[self.igw]),
                )
            )

        self.private_route_tables: list[aws.ec2.RouteTable] = []
        for i, (subnet, az) in enumerate(zip(self.private_subnets, args.availability_zones)):
            nat = self.nat_gateways[i % len(self.nat_gateways)]
            rt = aws.ec2.RouteTable(
                self.child(f"private-rt-{az[-1]}"),
                vpc_id=self.vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
                tags=c.with_name(self.child(f"private-rt-{az[-1]}")),
                opts=self.opts(),
            )
            self.private_route_tables.append(rt)
            aws.ec2.RouteTableAssociation(
                self.child(f"private-rta-{az[-1]}"), subnet_id=subnet.id, route_table_id=rt.id, opts=self.opts()
            )

        self.endpoint_sg = aws.ec2.SecurityGroup(
            self.child("endpoints-sg"),
            vpc_id=self.vpc.id,
            description="HTTPS from inside the VPC to interface endpoints",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=443, to_port=443, cidr_blocks=[args.cidr], description="VPC to endpoints"
                )
            ],
            tags=c.with_name(self.child("endpoints-sg")),
            opts=self.opts(),
        )
        self.endpoints: list[aws.ec2.VpcEndpoint] = [
            aws.ec2.VpcEndpoint(
                self.child("vpce-s3"),
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{c.region}.s3",
                vpc_endpoint_type="Gateway",
                route_table_ids=[rt.id for rt in self.private_route_tables],
                tags=c.with_name(self.child("vpce-s3")),
                opts=self.opts(),
            )
        ]
        for service in INTERFACE_ENDPOINTS:
            slug = service.replace(".", "-")
            self.endpoints.append(
                aws.ec2.VpcEndpoint(
                    self.child(f"vpce-{slug}"),
                    vpc_id=self.vpc.id,
                    service_name=f"com.amazonaws.{c.region}.{service}",
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=[s.id for s in self.private_subnets],
                    security_group_ids=[self.endpoint_sg.id],
                    tags=c.with_name(self.child(f"vpce-{slug}")),
                    opts=self.opts(),
                )
            )
        if args.flow_logs_bucket_arn is not None:
            aws.ec2.FlowLog(
                self.child("flow-logs"),
                vpc_id=self.vpc.id,
                traffic_type="ALL",
                log_destination_type="s3",
                log_destination=pulumi.Output.concat(args.flow_logs_bucket_arn, "/vpc-flow-logs/"),
                tags=c.with_name(self.child("flow-logs")),
                opts=self.opts(),
            )

        self.vpc_id = self.vpc.id
        self.public_subnet_ids = [s.id for s in self.public_subnets]
        self.private_subnet_ids = [s.id for s in self.private_subnets]
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
                "nat_gateway_ids": [n.id for n in self.nat_gateways],
            }
        )
