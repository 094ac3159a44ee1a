"""Seeding handlers for the stack's base: KMS, S3 buckets, Secrets Manager, the VPC, IAM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from validation.aws.seeding import (
    Made,
    Seeder,
    as_int,
    ec2_tags,
    handles,
    pascal,
    tag_list,
)

if TYPE_CHECKING:
    from infra.plan import PlannedResource


@handles("aws:kms/key:Key")
def _kms_key(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    kms = s.client("kms")
    meta = kms.create_key(Description=i.get("description", ""), Tags=tag_list(i, "TagKey", "TagValue"))["KeyMetadata"]
    if i.get("enableKeyRotation"):
        kms.enable_key_rotation(KeyId=meta["KeyId"])
    return meta["KeyId"], meta["Arn"]


@handles("aws:s3/bucket:Bucket")
def _bucket(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    s3 = s.client("s3")
    name = i["bucket"]
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": s.settings.region})
    if i.get("tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(i)})
    return name, f"arn:aws:s3:::{name}"


@handles("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
def _ownership(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    s.client("s3").put_bucket_ownership_controls(Bucket=i["bucket"], OwnershipControls={"Rules": [pascal(i["rule"])]})
    return None


@handles("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
def _public_access(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    keys = {"blockPublicAcls": "BlockPublicAcls", "ignorePublicAcls": "IgnorePublicAcls",
            "blockPublicPolicy": "BlockPublicPolicy", "restrictPublicBuckets": "RestrictPublicBuckets"}
    config = {api: bool(i.get(k, False)) for k, api in keys.items()}
    s.client("s3").put_public_access_block(Bucket=i["bucket"], PublicAccessBlockConfiguration=config)
    return None


@handles("aws:s3/bucketVersioning:BucketVersioning")
def _versioning(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    status = i["versioningConfiguration"]["status"]
    s.client("s3").put_bucket_versioning(Bucket=i["bucket"], VersioningConfiguration={"Status": status})
    return None


@handles("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
def _sse(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    rules = pascal(i["rules"])
    s.client("s3").put_bucket_encryption(Bucket=i["bucket"], ServerSideEncryptionConfiguration={"Rules": rules})
    return None


@handles("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
def _lifecycle(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    s.client("s3").put_bucket_lifecycle_configuration(Bucket=i["bucket"],
                                                      LifecycleConfiguration={"Rules": pascal(i["rules"])})
    return None


@handles("aws:s3/bucketLogging:BucketLogging")
def _logging(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    """moto checks the target's policy more narrowly than S3: it wants a statement whose Resource is
    exactly ``<target>/*`` and fails on a ``"Principal": "*"`` statement. So the logging is switched
    on under a policy moto reads, and the target's own policy (the program's) is put back."""
    from botocore.exceptions import ClientError

    s3 = s.client("s3")
    target = i["targetBucket"]
    try:
        own: str | None = s3.get_bucket_policy(Bucket=target)["Policy"]
    except ClientError:
        own = None
    s3.put_bucket_policy(Bucket=target, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": ["s3:PutObject"],
        "Resource": f"arn:aws:s3:::{target}/*"}]}))
    try:
        s3.put_bucket_logging(Bucket=i["bucket"], BucketLoggingStatus={
            "LoggingEnabled": {"TargetBucket": target, "TargetPrefix": i.get("targetPrefix", "")}})
    finally:
        if own is None:
            s3.delete_bucket_policy(Bucket=target)
        else:
            s3.put_bucket_policy(Bucket=target, Policy=own)
    return None


@handles("aws:s3/bucketPolicy:BucketPolicy")
def _bucket_policy(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    s.client("s3").put_bucket_policy(Bucket=i["bucket"], Policy=i["policy"])
    return None


@handles("aws:s3/bucketObjectv2:BucketObjectv2")
def _object(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    source = (i.get("source") or {}).get("path")
    body = Path(source).read_bytes() if source and Path(source).is_file() else (i.get("content") or "").encode()
    s.client("s3").put_object(Bucket=i["bucket"], Key=i["key"], Body=body,
                              ContentType=i.get("contentType", "binary/octet-stream"))
    return None


@handles("aws:secretsmanager/secret:Secret")
def _secret(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    kwargs: dict[str, Any] = {"Name": i["name"], "Description": i.get("description", ""), "Tags": tag_list(i)}
    if i.get("kmsKeyId"):
        kwargs["KmsKeyId"] = i["kmsKeyId"]
    arn = s.client("secretsmanager").create_secret(**kwargs)["ARN"]
    return arn, arn


# ---- network ---------------------------------------------------------------------
@handles("aws:ec2/vpc:Vpc")
def _vpc(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    ec2 = s.client("ec2")
    vpc = ec2.create_vpc(CidrBlock=i["cidrBlock"], TagSpecifications=ec2_tags("vpc", r, i))["Vpc"]
    for attribute in ("enableDnsSupport", "enableDnsHostnames"):
        if attribute in i:
            ec2.modify_vpc_attribute(VpcId=vpc["VpcId"], **{attribute[:1].upper() + attribute[1:]: {"Value": bool(i[attribute])}})
    return vpc["VpcId"], f"arn:aws:ec2:{s.settings.region}:{s.account}:vpc/{vpc['VpcId']}"


@handles("aws:ec2/subnet:Subnet")
def _subnet(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    ec2 = s.client("ec2")
    subnet = ec2.create_subnet(VpcId=i["vpcId"], CidrBlock=i["cidrBlock"], AvailabilityZone=i["availabilityZone"],
                               TagSpecifications=ec2_tags("subnet", r, i))["Subnet"]
    ec2.modify_subnet_attribute(SubnetId=subnet["SubnetId"], MapPublicIpOnLaunch={"Value": bool(i.get("mapPublicIpOnLaunch"))})
    return subnet["SubnetId"], subnet.get("SubnetArn", "")


@handles("aws:ec2/internetGateway:InternetGateway")
def _igw(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    ec2 = s.client("ec2")
    igw = ec2.create_internet_gateway(TagSpecifications=ec2_tags("internet-gateway", r, i))["InternetGateway"]
    ec2.attach_internet_gateway(InternetGatewayId=igw["InternetGatewayId"], VpcId=i["vpcId"])
    return igw["InternetGatewayId"], ""


@handles("aws:ec2/eip:Eip")
def _eip(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    eip = s.client("ec2").allocate_address(Domain=i.get("domain", "vpc"), TagSpecifications=ec2_tags("elastic-ip", r, i))
    return eip["AllocationId"], ""


@handles("aws:ec2/natGateway:NatGateway")
def _nat(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    nat = s.client("ec2").create_nat_gateway(SubnetId=i["subnetId"], AllocationId=i["allocationId"],
                                             ConnectivityType=i.get("connectivityType", "public"),
                                             TagSpecifications=ec2_tags("natgateway", r, i))["NatGateway"]
    return nat["NatGatewayId"], ""


@handles("aws:ec2/routeTable:RouteTable")
def _route_table(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    ec2 = s.client("ec2")
    table = ec2.create_route_table(VpcId=i["vpcId"], TagSpecifications=ec2_tags("route-table", r, i))["RouteTable"]
    targets = {"gatewayId": "GatewayId", "natGatewayId": "NatGatewayId", "vpcEndpointId": "VpcEndpointId"}
    for route in i.get("routes", []):
        target = {api: route[k] for k, api in targets.items() if route.get(k)}
        ec2.create_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock=route["cidrBlock"], **target)
    return table["RouteTableId"], ""


@handles("aws:ec2/routeTableAssociation:RouteTableAssociation")
def _association(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    assoc = s.client("ec2").associate_route_table(RouteTableId=i["routeTableId"], SubnetId=i["subnetId"])
    return assoc["AssociationId"], ""


def _permission(rule: dict[str, Any], *, cidr_key: str, group_key: str) -> dict[str, Any]:
    perm: dict[str, Any] = {"IpProtocol": rule.get("ipProtocol") or rule.get("protocol", "-1")}
    if perm["IpProtocol"] != "-1":
        perm.update(FromPort=int(rule["fromPort"]), ToPort=int(rule["toPort"]))
    desc = {"Description": rule["description"]} if rule.get("description") else {}
    cidrs = rule.get(cidr_key)
    if cidrs:
        perm["IpRanges"] = [{"CidrIp": c, **desc} for c in ([cidrs] if isinstance(cidrs, str) else cidrs)]
    if rule.get(group_key):
        perm["UserIdGroupPairs"] = [{"GroupId": rule[group_key], **desc}]
    return perm


@handles("aws:ec2/securityGroup:SecurityGroup")
def _security_group(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    ec2 = s.client("ec2")
    group = ec2.create_security_group(GroupName=i.get("name", r.name), Description=i.get("description", "Managed by Pulumi"),
                                      VpcId=i["vpcId"], TagSpecifications=ec2_tags("security-group", r, i))["GroupId"]
    # The AWS provider deletes the allow-all egress rule AWS adds to a new group: only declared rules remain.
    ec2.revoke_security_group_egress(GroupId=group, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    if i.get("ingress"):
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            _permission(rule, cidr_key="cidrBlocks", group_key="securityGroups") for rule in i["ingress"]])
    if i.get("egress"):
        ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[
            _permission(rule, cidr_key="cidrBlocks", group_key="securityGroups") for rule in i["egress"]])
    return group, f"arn:aws:ec2:{s.settings.region}:{s.account}:security-group/{group}"


@handles("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
def _ingress_rule(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    perm = _permission(i, cidr_key="cidrIpv4", group_key="referencedSecurityGroupId")
    rules = s.client("ec2").authorize_security_group_ingress(GroupId=i["securityGroupId"], IpPermissions=[perm])
    return (rules.get("SecurityGroupRules") or [{}])[0].get("SecurityGroupRuleId", ""), ""


@handles("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
def _egress_rule(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    perm = _permission(i, cidr_key="cidrIpv4", group_key="referencedSecurityGroupId")
    rules = s.client("ec2").authorize_security_group_egress(GroupId=i["securityGroupId"], IpPermissions=[perm])
    return (rules.get("SecurityGroupRules") or [{}])[0].get("SecurityGroupRuleId", ""), ""


@handles("aws:ec2/vpcEndpoint:VpcEndpoint")
def _endpoint(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    kwargs: dict[str, Any] = {"VpcId": i["vpcId"], "ServiceName": i["serviceName"],
                              "VpcEndpointType": i.get("vpcEndpointType", "Gateway"),
                              "TagSpecifications": ec2_tags("vpc-endpoint", r, i)}
    for key, api in (("routeTableIds", "RouteTableIds"), ("subnetIds", "SubnetIds"), ("securityGroupIds", "SecurityGroupIds")):
        if i.get(key):
            kwargs[api] = i[key]
    if "privateDnsEnabled" in i:
        kwargs["PrivateDnsEnabled"] = bool(i["privateDnsEnabled"])
    endpoint = s.client("ec2").create_vpc_endpoint(**kwargs)["VpcEndpoint"]
    return endpoint["VpcEndpointId"], ""


@handles("aws:ec2/flowLog:FlowLog")
def _flow_log(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    ids = s.client("ec2").create_flow_logs(ResourceIds=[i["vpcId"]], ResourceType="VPC", TrafficType=i.get("trafficType", "ALL"),
                                           LogDestinationType=i.get("logDestinationType", "s3"),
                                           LogDestination=i["logDestination"])["FlowLogIds"]
    return (ids or [""])[0], ""


# ---- IAM -------------------------------------------------------------------------
@handles("aws:iam/role:Role")
def _role(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    role = s.client("iam").create_role(RoleName=i["name"], AssumeRolePolicyDocument=i["assumeRolePolicy"],
                                       MaxSessionDuration=as_int(i, "maxSessionDuration", 3600), Tags=tag_list(i))["Role"]
    return role["RoleName"], role["Arn"]


@handles("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
def _attachment(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    s.client("iam").attach_role_policy(RoleName=i["role"], PolicyArn=i["policyArn"])
    return None


@handles("aws:iam/rolePolicy:RolePolicy")
def _inline_policy(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    name = i.get("name", r.name)
    s.client("iam").put_role_policy(RoleName=i["role"], PolicyName=name, PolicyDocument=i["policy"])
    return f"{i['role']}:{name}", ""
