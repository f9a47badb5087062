//! EC2 adapter: the NAT instances and NAT gateways whose `Name` tag matches a pattern, the
//! private route tables whose `Name` tag matches another, and the zones of some subnets.

use aws_sdk_ec2::types::Filter;
use aws_sdk_ec2::Client;
use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;

use super::error::{classify, AwsError, CallContext};

pub const DESCRIBE_INSTANCES: &str = "ec2:DescribeInstances";
pub const DESCRIBE_NAT_GATEWAYS: &str = "ec2:DescribeNatGateways";
pub const DESCRIBE_ROUTE_TABLES: &str = "ec2:DescribeRouteTables";
pub const DESCRIBE_SUBNETS: &str = "ec2:DescribeSubnets";
pub const DESCRIBE_ADDRESSES: &str = "ec2:DescribeAddresses";

/// An EC2 instance as the NAT probe needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawInstance {
    pub id: String,
    pub name: Option<String>,
    pub state: String,
    pub public_ip: Option<String>,
    pub availability_zone: Option<String>,
    pub launch_time: Option<String>,
    pub source_dest_check: Option<bool>,
    pub network_interfaces: Vec<String>,
}

/// A NAT gateway as the NAT probe needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawNatGateway {
    pub id: String,
    pub name: Option<String>,
    pub state: String,
    pub public_ip: Option<String>,
    pub subnet_id: Option<String>,
    pub create_time: Option<String>,
}

fn name_filter(pattern: &str) -> Filter {
    Filter::builder().name("tag:Name").values(pattern).build()
}

fn name_tag(tags: &[aws_sdk_ec2::types::Tag]) -> Option<String> {
    tags.iter()
        .find(|t| t.key() == Some("Name"))
        .and_then(|t| t.value())
        .map(str::to_string)
}

fn rfc3339(t: Option<&DateTime>) -> Option<String> {
    t.and_then(|t| t.fmt(Format::DateTime).ok())
}

/// One page of DescribeInstances filtered on `tag:Name`.
pub async fn describe_instances_page(
    client: &Client,
    endpoint: Option<&str>,
    name_pattern: &str,
    next_token: Option<String>,
) -> Result<(Vec<RawInstance>, Option<String>), AwsError> {
    let ctx = CallContext {
        iam_action: DESCRIBE_INSTANCES,
        resource: None,
        endpoint,
    };
    let output = client
        .describe_instances()
        .filters(name_filter(name_pattern))
        .set_next_token(next_token)
        .send()
        .await
        .map_err(|e| classify(ctx, e))?;
    let instances = output
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| RawInstance {
            id: i.instance_id().unwrap_or("").to_string(),
            name: name_tag(i.tags()),
            state: i
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_string())
                .unwrap_or_else(|| "unknown".into()),
            public_ip: i.public_ip_address().map(str::to_string),
            availability_zone: i
                .placement()
                .and_then(|p| p.availability_zone())
                .map(str::to_string),
            launch_time: rfc3339(i.launch_time()),
            source_dest_check: i.source_dest_check(),
            network_interfaces: i
                .network_interfaces()
                .iter()
                .filter_map(|n| n.network_interface_id())
                .map(str::to_string)
                .collect(),
        })
        .collect();
    Ok((instances, output.next_token().map(str::to_string)))
}

/// One page of DescribeNatGateways filtered on `tag:Name`.
pub async fn describe_nat_gateways_page(
    client: &Client,
    endpoint: Option<&str>,
    name_pattern: &str,
    next_token: Option<String>,
) -> Result<(Vec<RawNatGateway>, Option<String>), AwsError> {
    let ctx = CallContext {
        iam_action: DESCRIBE_NAT_GATEWAYS,
        resource: None,
        endpoint,
    };
    let output = client
        .describe_nat_gateways()
        .filter(name_filter(name_pattern))
        .set_next_token(next_token)
        .send()
        .await
        .map_err(|e| classify(ctx, e))?;
    let gateways = output
        .nat_gateways()
        .iter()
        .map(|g| RawNatGateway {
            id: g.nat_gateway_id().unwrap_or("").to_string(),
            name: name_tag(g.tags()),
            state: g
                .state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "unknown".into()),
            public_ip: g
                .nat_gateway_addresses()
                .iter()
                .find_map(|a| a.public_ip())
                .map(str::to_string),
            subnet_id: g.subnet_id().map(str::to_string),
            create_time: rfc3339(g.create_time()),
        })
        .collect();
    Ok((gateways, output.next_token().map(str::to_string)))
}

/// A route table as the NAT probe needs it: its associated subnets and its default route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRouteTable {
    pub id: String,
    pub name: Option<String>,
    pub subnet_ids: Vec<String>,
    /// (target, state) of the `0.0.0.0/0` route.
    pub default_route: Option<(String, String)>,
}

/// One page of DescribeRouteTables filtered on `tag:Name`.
pub async fn describe_route_tables_page(
    client: &Client,
    endpoint: Option<&str>,
    name_pattern: &str,
    next_token: Option<String>,
) -> Result<(Vec<RawRouteTable>, Option<String>), AwsError> {
    let ctx = CallContext {
        iam_action: DESCRIBE_ROUTE_TABLES,
        resource: None,
        endpoint,
    };
    let output = client
        .describe_route_tables()
        .filters(name_filter(name_pattern))
        .set_next_token(next_token)
        .send()
        .await
        .map_err(|e| classify(ctx, e))?;
    let tables = output
        .route_tables()
        .iter()
        .map(|t| RawRouteTable {
            id: t.route_table_id().unwrap_or("").to_string(),
            name: name_tag(t.tags()),
            subnet_ids: t
                .associations()
                .iter()
                .filter_map(|a| a.subnet_id())
                .map(str::to_string)
                .collect(),
            default_route: t
                .routes()
                .iter()
                .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
                .map(|r| {
                    // An interface route to an instance names the instance too (AWS fills it).
                    let target = r
                        .instance_id()
                        .or(r.nat_gateway_id())
                        .or(r.network_interface_id())
                        .or(r.gateway_id())
                        .unwrap_or("")
                        .to_string();
                    let state = r
                        .state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|| "unknown".into());
                    (target, state)
                }),
        })
        .collect();
    Ok((tables, output.next_token().map(str::to_string)))
}

/// The availability zone of each given subnet (one call: the NAT's subnets are few).
pub async fn describe_subnet_zones(
    client: &Client,
    endpoint: Option<&str>,
    subnet_ids: &[String],
) -> Result<Vec<(String, String)>, AwsError> {
    let ctx = CallContext {
        iam_action: DESCRIBE_SUBNETS,
        resource: None,
        endpoint,
    };
    let output = client
        .describe_subnets()
        .set_subnet_ids(Some(subnet_ids.to_vec()))
        .send()
        .await
        .map_err(|e| classify(ctx, e))?;
    Ok(output
        .subnets()
        .iter()
        .filter_map(|s| {
            Some((
                s.subnet_id()?.to_string(),
                s.availability_zone()?.to_string(),
            ))
        })
        .collect())
}

/// An Elastic IP as the NAT probe needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAddress {
    pub public_ip: String,
    pub allocation_id: Option<String>,
    pub instance_id: Option<String>,
    pub network_interface_id: Option<String>,
    pub name: Option<String>,
}

/// The Elastic IPs whose `Name` tag matches a pattern (one call: DescribeAddresses has no
/// pages).
pub async fn describe_addresses(
    client: &Client,
    endpoint: Option<&str>,
    name_pattern: &str,
) -> Result<Vec<RawAddress>, AwsError> {
    let ctx = CallContext {
        iam_action: DESCRIBE_ADDRESSES,
        resource: None,
        endpoint,
    };
    let output = client
        .describe_addresses()
        .filters(name_filter(name_pattern))
        .send()
        .await
        .map_err(|e| classify(ctx, e))?;
    Ok(output
        .addresses()
        .iter()
        .filter_map(|a| {
            Some(RawAddress {
                public_ip: a.public_ip()?.to_string(),
                allocation_id: a.allocation_id().map(str::to_string),
                instance_id: a.instance_id().map(str::to_string),
                network_interface_id: a.network_interface_id().map(str::to_string),
                name: name_tag(a.tags()),
            })
        })
        .collect())
}
