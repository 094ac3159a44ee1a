"""Prefect server on ECS behind an HTTPS ALB, plus the ECS worker service.

Security groups chain ALB -> ECS -> RDS and nothing else: the internet
reaches only the ALB (443, and 80 which redirects), the ALB reaches only the
server's port, and only the server reaches PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.base import Common, FinksComponent
from infra.components.database import DB_PORT
from infra.components.ecs import PREFECT_PORT

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
HEALTH_PATH = "/api/health"


@dataclass(frozen=True)
class PrefectServerArgs:
    common: Common
    vpc_id: pulumi.Input[str]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    db_security_group_id: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    server_task_definition_arn: pulumi.Input[str]
    worker_task_definition_arn: pulumi.Input[str]
    tasks_security_group_id: pulumi.Input[str]
    domain: str
    logs_bucket: pulumi.Input[str]
    server_count: int = 1
    hosted_zone_id: str | None = None


class PrefectServer(FinksComponent):
    kind = "PrefectServer"

    def __init__(self, name: str, args: PrefectServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        c = args.common
        self.alb_sg = aws.ec2.SecurityGroup(
            self.child("alb-sg"), vpc_id=args.vpc_id, description="Prefect ALB: HTTPS from the internet",
            tags=c.with_name(self.child("alb-sg")), opts=self.opts(),
        )
        self.service_sg = aws.ec2.SecurityGroup(
            self.child("service-sg"), vpc_id=args.vpc_id, description="Prefect server tasks: from the ALB only",
            tags=c.with_name(self.child("service-sg")), opts=self.opts(),
        )
        for port in (443, 80):
            aws.vpc.SecurityGroupIngressRule(
                self.child(f"alb-in-{port}"), security_group_id=self.alb_sg.id, ip_protocol="tcp",
                from_port=port, to_port=port, cidr_ipv4="0.0.0.0/0", description=f"internet to ALB :{port}",
                tags=c.tags, opts=self.opts(),
            )
        aws.vpc.SecurityGroupEgressRule(
            self.child("alb-out-service"), security_group_id=self.alb_sg.id, ip_protocol="tcp",
            from_port=PREFECT_PORT, to_port=PREFECT_PORT, referenced_security_group_id=self.service_sg.id,
            description="ALB to Prefect server", tags=c.tags, opts=self.opts(),
        )
        aws.vpc.SecurityGroupIngressRule(
            self.child("service-in-alb"), security_group_id=self.service_sg.id, ip_protocol="tcp",
            from_port=PREFECT_PORT, to_port=PREFECT_PORT, referenced_security_group_id=self.alb_sg.id,
            description="ALB to Prefect server", tags=c.tags, opts=self.opts(),
        )
        aws.vpc.SecurityGroupEgressRule(
            self.child("service-out-db"), security_group_id=self.service_sg.id, ip_protocol="tcp",
            from_port=DB_PORT, to_port=DB_PORT, referenced_security_group_id=args.db_security_group_id,
            description="Prefect server to PostgreSQL", tags=c.tags, opts=self.opts(),
        )
        aws.vpc.SecurityGroupIngressRule(
            self.child("db-in-service"), security_group_id=args.db_security_group_id, ip_protocol="tcp",
            from_port=DB_PORT, to_port=DB_PORT, referenced_security_group_id=self.service_sg.id,
            description="Prefect server to PostgreSQL", tags=c.tags, opts=self.opts(),
        )
        # Image pulls, Secrets Manager and CloudWatch are HTTPS (endpoints or NAT).
        aws.vpc.SecurityGroupEgressRule(
            self.child("service-out-https"), security_group_id=self.service_sg.id, ip_protocol="tcp",
            from_port=443, to_port=443, cidr_ipv4="0.0.0.0/0", description="HTTPS to AWS APIs",
            tags=c.tags, opts=self.opts(),
        )

        self.certificate = aws.acm.Certificate(
            self.child("cert"), domain_name=args.domain, validation_method="DNS", tags=c.tags,
            opts=self.opts(),
        )
        certificate_arn: pulumi.Input[str] = self.certificate.arn
        if args.hosted_zone_id:
            option = self.certificate.domain_validation_options[0]
            record = aws.route53.Record(
                self.child("cert-validation"), zone_id=args.hosted_zone_id, name=option.resource_record_name,
                type=option.resource_record_type, records=[option.resource_record_value], ttl=300,
                allow_overwrite=True, opts=self.opts(),
            )
            certificate_arn = aws.acm.CertificateValidation(
                self.child("cert-validated"), certificate_arn=self.certificate.arn,
                validation_record_fqdns=[record.fqdn], opts=self.opts(),
            ).certificate_arn

        self.alb = aws.lb.LoadBalancer(
            self.child("alb"),
            name=f"{c.prefix}-prefect"[:32],
            load_balancer_type="application",
            internal=False,
            subnets=args.public_subnet_ids,
            security_groups=[self.alb_sg.id],
            drop_invalid_header_fields=True,
            idle_timeout=120,
            access_logs=aws.lb.LoadBalancerAccessLogsArgs(bucket=args.logs_bucket, prefix="alb", enabled=True),
            tags=c.tags,
            opts=self.opts(),
        )
        self.target_group = aws.lb.TargetGroup(
            self.child("tg"),
            name=f"{c.prefix}-prefect"[:32],
            port=PREFECT_PORT,
            protocol="HTTP",
            target_type="ip",
            vpc_id=args.vpc_id,
            deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                path=HEALTH_PATH, matcher="200", interval=30, timeout=5, healthy_threshold=2, unhealthy_threshold=3
            ),
            tags=c.tags,
            opts=self.opts(),
        )
        self.https_listener = aws.lb.Listener(
            self.child("https"),
            load_balancer_arn=self.alb.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=certificate_arn,
            default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=self.target_group.arn)],
            tags=c.tags,
            opts=self.opts(),
        )
        aws.lb.Listener(
            self.child("http-redirect"),
            load_balancer_arn=self.alb.arn,
            port=80,
            protocol="HTTP",
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(
                    type="redirect",
                    redirect=aws.lb.ListenerDefaultActionRedirectArgs(port="443", protocol="HTTPS", status_code="HTTP_301"),
                )
            ],
            tags=c.tags,
            opts=self.opts(),
        )
        if args.hosted_zone_id:
            aws.route53.Record(
                self.child("dns"), zone_id=args.hosted_zone_id, name=args.domain, type="A",
                aliases=[aws.route53.RecordAliasArgs(name=self.alb.dns_name, zone_id=self.alb.zone_id, evaluate_target_health=True)],
                opts=self.opts(),
            )

        self.server_service = aws.ecs.Service(
            self.child("server"),
            name=f"{c.prefix}-prefect-server",
            cluster=args.cluster_arn,
            task_definition=args.server_task_definition_arn,
            desired_count=args.server_count,
            launch_type="FARGATE",
            platform_version="LATEST",
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=args.private_subnet_ids, security_groups=[self.service_sg.id], assign_public_ip=False
            ),
            load_balancers=[
                aws.ecs.ServiceLoadBalancerArgs(
                    target_group_arn=self.target_group.arn, container_name="prefect-server", container_port=PREFECT_PORT
                )
            ],
            # Database migrations run at start-up; don't let the ALB kill the task meanwhile.
            health_check_grace_period_seconds=180,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            enable_execute_command=True,
            propagate_tags="SERVICE",
            tags=c.tags,
            opts=self.opts(depends_on=[self.https_listener]),
        )
        self.worker_service = aws.ecs.Service(
            self.child("worker"),
            name=f"{c.prefix}-prefect-worker",
            cluster=args.cluster_arn,
            task_definition=args.worker_task_definition_arn,
            desired_count=1,
            launch_type="FARGATE",
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=args.private_subnet_ids, security_groups=[args.tasks_security_group_id], assign_public_ip=False
            ),
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            propagate_tags="SERVICE",
            tags=c.tags,
            opts=self.opts(depends_on=[self.server_service]),
        )
        self.url = f"https://{args.domain}"
        self.register_outputs(
            {
                "url": self.url,
                "alb_dns_name": self.alb.dns_name,
                "server_service": self.server_service.name,
                "worker_service": self.worker_service.name,
            }
        )
