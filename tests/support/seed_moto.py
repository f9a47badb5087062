#!/usr/bin/env python3
"""Seeds a moto server with a Cabalmail-like environment for the AWS probe tests.

Usage: seed_moto.py ENDPOINT SCENARIO NOW_MS
Prints one JSON object describing what was created (ids, addresses, expected counts), which the
Rust tests assert against. Scenarios:
  full        three tiers' log groups with realistic sendmail lines, NAT instances and gateways
  big         one tier (smtp-out) with many matching events, for deadline tests
  restricted  an IAM user allowed only ec2:DescribeInstances, the log groups and one NAT instance
  imap_auth   IMAPAuthFailureSpike: login lines, source interfaces, the master-password parameter
  restart_loop ContainerRestartLoop: services, task definitions, stopped tasks, container instances
"""
import datetime
import json
import sys

import boto3

ENDPOINT, SCENARIO, NOW_MS = sys.argv[1], sys.argv[2], int(sys.argv[3])
KW = dict(endpoint_url=ENDPOINT, region_name="us-east-1",
          aws_access_key_id="testing", aws_secret_access_key="testing")
logs = boto3.client("logs", **KW)
MIN = 60_000

TASKS = {
    "imap": ["9f1c2d3e4a5b46c7a8b9c0d1e2f3a4b5"],
    "smtp-in": ["1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6", "2b3c4d5e6f7a48b9c0d1e2f3a4b5c6d7"],
    "smtp-out": ["3c4d5e6f7a8b49c0d1e2f3a4b5c6d7e8", "4d5e6f7a8b9c40d1e2f3a4b5c6d7e8f9",
                 "5e6f7a8b9c0d41e2f3a4b5c6d7e8f9a0"],
}


def syslog_prefix(pid):
    return f"Nov 28 20:14:03 ip-10-0-2-17 sm-mta[{pid}]"


def deferred_gmail(i):
    return (f"{syslog_prefix(812)}: 5ASKE3aB{i:06d}: to=<user{i}@gmail.com>, delay=00:00:02, "
            f"xdelay=00:00:02, mailer=esmtp, pri=121458, relay=gmail-smtp-in.l.google.com. "
            f"[142.250.31.27], dsn=4.7.28, stat=Deferred: 421-4.7.28 [203.0.113.7] Our system has "
            f"detected an unusual rate of unsolicited mail originating from your IP address.")


def deferred_network(i):
    return (f"{syslog_prefix(813)}: 5ASKF4bC{i:06d}: to=<someone{i}@example.org>, delay=00:05:00, "
            f"xdelay=00:05:00, mailer=esmtp, pri=30000, relay=mx.example.org., dsn=4.4.1, "
            f"stat=Deferred: Connection timed out with mx.example.org.")


def bounced_out(i):
    return (f"{syslog_prefix(814)}: 5ASKG5cD{i:06d}: to=<person{i}@outlook.com>, delay=00:00:01, "
            f"xdelay=00:00:01, mailer=esmtp, pri=30000, relay=outlook-com.olc.protection.outlook.com. "
            f"[52.101.10.1], dsn=5.7.1, stat=Service unavailable")


def bounced_in(i):
    return (f"{syslog_prefix(815)}: 5ASKH6dE{i:06d}: <nobody{i}@cabal.example>... User unknown; "
            f"to=<nobody{i}@cabal.example>, delay=00:00:00, mailer=local, pri=30000, dsn=5.1.1, "
            f"stat=User unknown")


def deferred_imap(i):
    return (f"{syslog_prefix(816)}: 5ASKI7eF{i:06d}: to=<owner{i}@cabal.example>, delay=00:00:03, "
            f"xdelay=00:00:03, mailer=local, pri=30000, dsn=4.0.0, stat=Deferred: local mailer "
            f"(/usr/bin/procmail) exited with EX_TEMPFAIL")


def sent(i):
    return (f"{syslog_prefix(817)}: 5ASKJ8fG{i:06d}: to=<friend{i}@yahoo.com>, delay=00:00:01, "
            f"xdelay=00:00:01, mailer=esmtp, pri=30000, relay=mta7.am0.yahoodns.net. "
            f"[67.195.204.72], dsn=2.0.0, stat=Sent (ok dirdel)")


NOISE = [
    "2026-11-28 20:14:01,123 INFO success: reconfigure entered RUNNING state",
    "Nov 28 20:14:02 ip-10-0-2-17 opendkim[77]: 5ASKE3aB000001: DKIM-Signature field added",
    "Nov 28 20:14:02 ip-10-0-2-17 dovecot: imap-login: Login: user=<owner>, method=PLAIN",
]


def spread(lines, start_ms, end_ms):
    """Timestamps evenly spread over [start_ms, end_ms)."""
    n = max(len(lines), 1)
    step = max((end_ms - start_ms) // n, 1)
    return [(start_ms + k * step, line) for k, line in enumerate(lines)]


def put(group, stream, events):
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    events = sorted(events)
    for k in range(0, len(events), 5000):
        chunk = events[k:k + 5000]
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": t, "message": m} for t, m in chunk])


def seed_tier(tier, inside, outside):
    """inside/outside: lists of messages, round-robined over the tier's task streams."""
    group = f"/ecs/cabal-{tier}"
    logs.create_log_group(logGroupName=group)
    streams = [f"{tier}/{tier}/{t}" for t in TASKS[tier]]
    per_stream = {s: [] for s in streams}
    timed = spread(inside, NOW_MS - 20 * MIN, NOW_MS - 1 * MIN) + \
        spread(outside, NOW_MS - 50 * MIN, NOW_MS - 35 * MIN)
    for k, ev in enumerate(timed):
        per_stream[streams[k % len(streams)]].append(ev)
    for s in streams:
        put(group, s, per_stream[s])
    return max(t for t, _ in timed)


def seed_full():
    out = {}
    # smtp-out: 150 policy deferrals + 20 network deferrals + 10 bounces match; 100 sent and
    # 60 noise lines do not; 30 deferrals lie outside the window.
    inside = [deferred_gmail(i) for i in range(150)] + [deferred_network(i) for i in range(20)] + \
        [bounced_out(i) for i in range(10)] + [sent(i) for i in range(100)] + NOISE * 20
    newest = seed_tier("smtp-out", inside, [deferred_gmail(1000 + i) for i in range(30)])
    out["smtp-out"] = {"matching": 180, "deferred": 170, "bounced": 10, "in_window": len(inside),
                       "newest_ms": newest}
    inside = [bounced_in(i) for i in range(12)] + [sent(i) for i in range(40)] + NOISE * 7
    newest = seed_tier("smtp-in", inside, [bounced_in(100 + i) for i in range(5)])
    out["smtp-in"] = {"matching": 12, "deferred": 0, "bounced": 12, "in_window": len(inside),
                      "newest_ms": newest}
    inside = [deferred_imap(i) for i in range(7)] + NOISE * 10
    newest = seed_tier("imap", inside, [])
    out["imap"] = {"matching": 7, "deferred": 7, "bounced": 0, "in_window": len(inside),
                   "newest_ms": newest}

    ec2 = boto3.client("ec2", **KW)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{k}.0/24",
                                 AvailabilityZone=az)["Subnet"]["SubnetId"]
               for k, az in enumerate(["us-east-1a", "us-east-1b"])]
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    def instance(name, subnet):
        r = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                              SubnetId=subnet,
                              TagSpecifications=[{"ResourceType": "instance",
                                                  "Tags": [{"Key": "Name", "Value": name}]}])
        return r["Instances"][0]["InstanceId"]

    nat0 = instance("cabal-nat-0", subnets[0])
    nat1 = instance("cabal-nat-1", subnets[1])
    nat2 = instance("cabal-nat-2", subnets[0])
    legacy = instance("cabal-nat", subnets[0])      # the runbook's filter would match only this
    web = instance("web-1", subnets[1])
    eip0 = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(InstanceId=nat0, AllocationId=eip0["AllocationId"])
    # Cabalmail's NAT Elastic IPs are tagged cabal-nat-eip-<n>; the stopped NAT keeps its own.
    eip1 = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(InstanceId=nat1, AllocationId=eip1["AllocationId"])
    ec2.create_tags(Resources=[eip0["AllocationId"]], Tags=[{"Key": "Name", "Value": "cabal-nat-eip-0"}])
    ec2.create_tags(Resources=[eip1["AllocationId"]], Tags=[{"Key": "Name", "Value": "cabal-nat-eip-1"}])
    ec2.stop_instances(InstanceIds=[nat1])
    ec2.terminate_instances(InstanceIds=[nat2])
    eip_gw = ec2.allocate_address(Domain="vpc")
    gw = ec2.create_nat_gateway(SubnetId=subnets[1], AllocationId=eip_gw["AllocationId"],
                                TagSpecifications=[{"ResourceType": "natgateway",
                                                    "Tags": [{"Key": "Name", "Value": "cabal-nat-3"}]}])
    other_eip = ec2.allocate_address(Domain="vpc")
    other_gw = ec2.create_nat_gateway(SubnetId=subnets[0], AllocationId=other_eip["AllocationId"],
                                      TagSpecifications=[{"ResourceType": "natgateway",
                                                          "Tags": [{"Key": "Name", "Value": "shared-egress"}]}])
    # Cabalmail's routing: one private subnet and route table per zone, the default route to
    # the zone's NAT (an instance's interface, or a gateway); NAT instances forward with their
    # source/destination check off. A public table and an untagged one stay out.
    ec2.modify_instance_attribute(InstanceId=nat0, SourceDestCheck={"Value": False})
    private = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{10 + k}.0/24",
                                 AvailabilityZone=az)["Subnet"]["SubnetId"]
               for k, az in enumerate(["us-east-1a", "us-east-1b"])]

    def route_table(name, subnet, **target):
        tags = [{"ResourceType": "route-table", "Tags": [{"Key": "Name", "Value": name}]}]
        table = ec2.create_route_table(VpcId=vpc, TagSpecifications=tags)["RouteTable"]["RouteTableId"]
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", **target)
        return table

    nat0_eni = ec2.describe_instances(InstanceIds=[nat0])["Reservations"][0]["Instances"][0][
        "NetworkInterfaces"][0]["NetworkInterfaceId"]
    rt0 = route_table("cabal-private-rt-0", private[0], NetworkInterfaceId=nat0_eni)
    rt1 = route_table("cabal-private-rt-1", private[1],
                      NatGatewayId=gw["NatGateway"]["NatGatewayId"])
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    public_rt = route_table("cabal-public-rt", subnets[0], GatewayId=igw)
    desc = {i["InstanceId"]: i for r in ec2.describe_instances(InstanceIds=[nat0, nat1, nat2])["Reservations"]
            for i in r["Instances"]}
    out["nat"] = {
        "instances": {
            "cabal-nat-0": {"id": nat0, "state": desc[nat0]["State"]["Name"],
                            "public_ip": desc[nat0].get("PublicIpAddress"), "eip": eip0["PublicIp"],
                            "az": desc[nat0]["Placement"]["AvailabilityZone"]},
            "cabal-nat-1": {"id": nat1, "state": desc[nat1]["State"]["Name"],
                            "public_ip": desc[nat1].get("PublicIpAddress"),
                            "az": desc[nat1]["Placement"]["AvailabilityZone"]},
            "cabal-nat-2": {"id": nat2, "state": desc[nat2]["State"]["Name"],
                            "public_ip": desc[nat2].get("PublicIpAddress"),
                            "az": desc[nat2]["Placement"]["AvailabilityZone"]},
        },
        "excluded": [legacy, web, other_gw["NatGateway"]["NatGatewayId"]],
        "route_tables": {"cabal-private-rt-0": {"id": rt0, "az": "us-east-1a", "target": nat0_eni},
                         "cabal-private-rt-1": {"id": rt1, "az": "us-east-1b",
                                                "target": gw["NatGateway"]["NatGatewayId"]}},
        "public_route_table": public_rt,
        "addresses": {"cabal-nat-eip-0": {"public_ip": eip0["PublicIp"], "instance": nat0},
                      "cabal-nat-eip-1": {"public_ip": eip1["PublicIp"], "instance": nat1}},
        "gateway": {"id": gw["NatGateway"]["NatGatewayId"], "public_ip": eip_gw["PublicIp"],
                    "state": gw["NatGateway"]["State"], "subnet": subnets[1]},
    }
    # ECS: the cluster on one container instance, one service per tier and its running tasks
    # (moto starts no tasks for a service: they are run with the service's group, as ECS
    # does), plus a stopped task and a task of another service.
    ecs = boto3.client("ecs", **KW)
    ecs.create_cluster(clusterName="cabal-mail")
    host = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="m5.xlarge",
                             SubnetId=subnets[0])["Instances"][0]
    ecs.register_container_instance(cluster="cabal-mail", instanceIdentityDocument=json.dumps({
        "instanceId": host["InstanceId"], "region": "us-east-1",
        "availabilityZone": "us-east-1a", "privateIp": host["PrivateIpAddress"],
        "accountId": "123456789012", "instanceType": "m5.xlarge", "imageId": image}))
    counts = {"imap": 1, "smtp-in": 2, "smtp-out": 3}
    for tier in list(counts) + ["admin"]:
        ecs.register_task_definition(family=f"cabal-{tier}", networkMode="bridge",
                                     containerDefinitions=[{"name": tier, "image": "cabal",
                                                            "cpu": 16, "memory": 64}])
        ecs.create_service(cluster="cabal-mail", serviceName=f"cabal-{tier}",
                           taskDefinition=f"cabal-{tier}", desiredCount=counts.get(tier, 1))
    tasks = {}
    for tier, n in list(counts.items()) + [("admin", 1)]:
        r = ecs.run_task(cluster="cabal-mail", taskDefinition=f"cabal-{tier}", count=n,
                         launchType="EC2", group=f"service:cabal-{tier}")
        tasks[tier] = sorted(t["taskArn"] for t in r["tasks"])
    stopped = ecs.run_task(cluster="cabal-mail", taskDefinition="cabal-smtp-out", count=1,
                           launchType="EC2", group="service:cabal-smtp-out")["tasks"][0]["taskArn"]
    ecs.stop_task(cluster="cabal-mail", task=stopped, reason="scaled in")
    out["ecs"] = {"tasks": tasks, "stopped": stopped}
    return out


def seed_big():
    inside = [deferred_gmail(i) for i in range(3000)]
    seed_tier("smtp-out", inside, [])
    return {"smtp-out": {"matching": len(inside)}}


def seed_restricted():
    iam = boto3.client("iam", **KW)
    iam.create_user(UserName="cabal-triage-ec2-only")
    key = iam.create_access_key(UserName="cabal-triage-ec2-only")["AccessKey"]
    # DescribeInstances only: FilterLogEvents and DescribeNatGateways are denied.
    iam.put_user_policy(UserName="cabal-triage-ec2-only", PolicyName="describe-instances-only",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                            {"Effect": "Allow", "Action": ["ec2:DescribeInstances"],
                             "Resource": "*"}]}))
    for tier in TASKS:
        logs.create_log_group(logGroupName=f"/ecs/cabal-{tier}")
    ec2 = boto3.client("ec2", **KW)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    nat = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                            TagSpecifications=[{"ResourceType": "instance",
                                                "Tags": [{"Key": "Name", "Value": "cabal-nat-0"}]}])
    return {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"],
            "nat_instance": nat["Instances"][0]["InstanceId"]}


RUNBOOK_SCENARIOS = {}


def scenario(function):
    RUNBOOK_SCENARIOS[function.__name__.removeprefix("seed_")] = function
    return function


@scenario
def seed_imap_auth():
    """IMAPAuthFailureSpike: a plain (non-Lambda) interface in the VPC guessing ten user names, a
    Lambda's ENI logging in fine meanwhile, the master-password parameter (rewritten once, so
    version 2) beside a decoy whose name it prefixes, and one running imap task."""
    ec2 = boto3.client("ec2", **KW)
    vpc = ec2.create_vpc(CidrBlock="10.64.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.64.0.0/18",
                               AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    lambda_sg = ec2.create_security_group(GroupName="cabal-lambda-sg", Description="lambdas",
                                          VpcId=vpc)["GroupId"]
    ecs_sg = ec2.create_security_group(GroupName="cabal-ecs-instance-sg",
                                       Description="instances", VpcId=vpc)["GroupId"]
    # What Lambda creates for a VPC function: moto accepts InterfaceType=lambda but answers
    # "interface" (it hard-codes the type), so only the description and requester say Lambda.
    lambda_eni = ec2.create_network_interface(
        SubnetId=subnet, PrivateIpAddress="10.64.11.23", Groups=[lambda_sg],
        InterfaceType="lambda",
        Description="AWS Lambda VPC ENI-cabal-list_messages-1a2b3c4d")["NetworkInterface"]
    # A second address on the same interface (Lambda ENIs are shared by a function's sandboxes).
    ec2.assign_private_ip_addresses(NetworkInterfaceId=lambda_eni["NetworkInterfaceId"],
                                    PrivateIpAddresses=["10.64.11.24"])
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    intruder = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet,
                            "PrivateIpAddress": "10.64.40.17", "Groups": [ecs_sg]}])["Instances"][0]
    enis = {}
    for eni in ec2.describe_network_interfaces()["NetworkInterfaces"]:
        for address in eni["PrivateIpAddresses"]:
            enis[address["PrivateIpAddress"]] = {
                "id": eni["NetworkInterfaceId"], "interface_type": eni.get("InterfaceType"),
                "description": eni.get("Description"), "requester_id": eni.get("RequesterId"),
                "groups": [g["GroupName"] for g in eni.get("Groups", [])]}

    ssm = boto3.client("ssm", **KW)
    ssm.put_parameter(Name="/cabal/master_password", Value="moto-master-secret-v1",
                      Type="SecureString")
    ssm.put_parameter(Name="/cabal/master_password", Value="moto-master-secret-v2",
                      Type="SecureString", Overwrite=True)
    ssm.put_parameter(Name="/cabal/master_password_previous", Value="moto-decoy-secret",
                      Type="SecureString")
    parameter = ssm.describe_parameters(ParameterFilters=[
        {"Key": "Name", "Option": "Equals", "Values": ["/cabal/master_password"]}])["Parameters"][0]

    # imap-login lines in the last 20 minutes: 10 names guessed from 10.64.40.17 (two tries
    # each), a Lambda's logins succeeding from 10.64.11.23 in between, and the sync marker.
    group = "/ecs/cabal-imap"
    logs.create_log_group(logGroupName=group)
    guessed = ["root", "test", "info", "support", "sales", "webmaster", "admin", "postmaster",
               "office", "billing"]
    lines = []
    for k, user in enumerate(guessed * 2):
        lines.append(
            "imap-login: Info: Disconnected: Aborted login by logging out (auth failed, 1 attempts "
            f"in 2 secs): user=<{user}>, method=PLAIN, rip=10.64.40.17, lip=10.64.1.5, TLS, "
            f"session=<g{k:06d}AAAB>")
        if k % 4 == 0:
            lines.append(
                f"imap-login: Info: Login: user=<dana>, method=PLAIN, rip=10.64.11.23, "
                f"lip=10.64.1.5, mpid={1000 + k}, TLS, session=<l{k:06d}AAAB>")
    lines.append("[sync-users] 12 users in Cognito, 12 OS accounts")
    stamp = datetime.datetime.fromtimestamp(NOW_MS / 1000, datetime.timezone.utc)
    lines = [f"{stamp:%Y-%m-%d %H:%M:%S} {line}" for line in lines]
    put(group, "imap/imap/9f1c2d3e4a5b46c7a8b9c0d1e2f3a4b5",
        spread(lines, NOW_MS - 20 * MIN, NOW_MS - 1 * MIN))

    ecs = boto3.client("ecs", **KW)
    ecs.create_cluster(clusterName="cabal-mail")
    ecs.register_task_definition(family="cabal-imap", networkMode="bridge",
                                 containerDefinitions=[{"name": "imap", "image": "cabal-imap",
                                                        "cpu": 256, "memory": 512}])
    ecs.create_service(cluster="cabal-mail", serviceName="cabal-imap",
                       taskDefinition="cabal-imap", desiredCount=1)
    host = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="m5.large",
                             SubnetId=subnet)["Instances"][0]
    ecs.register_container_instance(cluster="cabal-mail", instanceIdentityDocument=json.dumps({
        "instanceId": host["InstanceId"], "region": "us-east-1", "availabilityZone": "us-east-1a",
        "privateIp": host["PrivateIpAddress"], "accountId": "123456789012",
        "instanceType": "m5.large", "imageId": image}))
    task = ecs.run_task(cluster="cabal-mail", taskDefinition="cabal-imap", count=1,
                        launchType="EC2", group="service:cabal-imap")["tasks"][0]["taskArn"]
    return {"network_interfaces": enis, "lambda_eni": lambda_eni["NetworkInterfaceId"],
            "intruder_instance": intruder["InstanceId"],
            "parameter": {"version": parameter["Version"],
                          "last_modified": parameter["LastModifiedDate"].timestamp()},
            "secret_values": ["moto-master-secret-v1", "moto-master-secret-v2",
                              "moto-decoy-secret"],
            "guessed_users": len(guessed), "failures": 2 * len(guessed),
            "imap_task": task}


ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


@scenario
def seed_restart_loop():
    """ContainerRestartLoop after an image push: cabal-imap on revision 2 (a new tag) whose tasks
    exit, revision 1 with the previous tag, two container instances (one draining), one running
    imap task holding 256 CPU / 512 MiB, another service's stopped task (moto ignores ListTasks'
    serviceName: the probe must keep it out), and error lines in the service's log group."""
    ec2 = boto3.client("ec2", **KW)
    ecs = boto3.client("ecs", **KW)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ecs.create_cluster(clusterName="cabal-mail")
    hosts = []
    for instance_type in ["m5.large", "t3.medium"]:
        host = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                 InstanceType=instance_type)["Instances"][0]
        arn = ecs.register_container_instance(cluster="cabal-mail", instanceIdentityDocument=json.dumps({
            "instanceId": host["InstanceId"], "region": "us-east-1",
            "availabilityZone": "us-east-1a", "privateIp": host["PrivateIpAddress"],
            "accountId": "123456789012", "instanceType": instance_type,
            "imageId": image}))["containerInstance"]["containerInstanceArn"]
        hosts.append(arn)
    ecs.update_container_instances_state(cluster="cabal-mail", containerInstances=[hosts[1]],
                                         status="DRAINING")
    tags = ["sha-1111aaaa", "sha-2222bbbb"]
    for tag in tags:
        ecs.register_task_definition(family="cabal-imap", networkMode="bridge",
                                     containerDefinitions=[{"name": "imap",
                                                            "image": f"{ECR}/cabal-imap:{tag}",
                                                            "cpu": 256, "memory": 512}])
    ecs.register_task_definition(family="cabal-smtp-in", networkMode="bridge",
                                 containerDefinitions=[{"name": "smtp-in",
                                                        "image": f"{ECR}/cabal-smtp-in:sha-3333cccc",
                                                        "cpu": 128, "memory": 256}])
    ecs.create_service(cluster="cabal-mail", serviceName="cabal-imap",
                       taskDefinition="cabal-imap:2", desiredCount=2)
    stopped = []
    for _ in range(2):
        arn = ecs.start_task(cluster="cabal-mail", taskDefinition="cabal-imap:2",
                             containerInstances=[hosts[0]],
                             group="service:cabal-imap")["tasks"][0]["taskArn"]
        ecs.stop_task(cluster="cabal-mail", task=arn, reason="Essential container in task exited")
        stopped.append(arn)
    other = ecs.start_task(cluster="cabal-mail", taskDefinition="cabal-smtp-in:1",
                           containerInstances=[hosts[0]],
                           group="service:cabal-smtp-in")["tasks"][0]["taskArn"]
    ecs.stop_task(cluster="cabal-mail", task=other, reason="Scaling activity initiated by deployment")
    running = ecs.start_task(cluster="cabal-mail", taskDefinition="cabal-imap:2",
                             containerInstances=[hosts[0]],
                             group="service:cabal-imap")["tasks"][0]["taskArn"]
    instances = {}
    for ci in ecs.describe_container_instances(cluster="cabal-mail",
                                               containerInstances=hosts)["containerInstances"]:
        resources = lambda key: {r["name"]: r["integerValue"] for r in ci[key]
                                 if r["name"] in ("CPU", "MEMORY")}
        instances[ci["containerInstanceArn"].rsplit("/", 1)[1]] = {
            "ec2_instance_id": ci["ec2InstanceId"], "status": ci["status"],
            "agent_connected": ci["agentConnected"],
            "remaining": resources("remainingResources"),
            "registered": resources("registeredResources")}
    service = ecs.describe_services(cluster="cabal-mail", services=["cabal-imap"])["services"][0]

    group = "/ecs/cabal-imap"
    logs.create_log_group(logGroupName=group)
    lines = ["dovecot: master: Error: service(imap-login): command startup failed, throttling",
             "dovecot: Fatal: Error reading configuration: Invalid settings: ssl_cert: open failed",
             "entrypoint: starting dovecot"] * 3
    put(group, "imap/imap/" + stopped[0].rsplit("/", 1)[1],
        spread(lines, NOW_MS - 20 * MIN, NOW_MS - 1 * MIN))
    return {"stopped": sorted(stopped), "other_stopped": other, "running": running,
            "instances": instances,
            "service": {"desired": service["desiredCount"], "running": service["runningCount"],
                        "pending": service["pendingCount"],
                        "deployments": [{"task_definition": d["taskDefinition"],
                                         "status": d["status"],
                                         "rollout_state": d.get("rolloutState")}
                                        for d in service["deployments"]]},
            "images": {f"cabal-imap:{k + 1}": f"{ECR}/cabal-imap:{tag}"
                       for k, tag in enumerate(tags)},
            "error_lines": 6}


result = {"full": seed_full, "big": seed_big, "restricted": seed_restricted,
          **RUNBOOK_SCENARIOS}[SCENARIO]()
print(json.dumps(result))
