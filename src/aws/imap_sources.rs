//! EC2 adapter for the IMAPAuthFailureSpike runbook: the network interfaces holding some private
//! IPs (DescribeNetworkInterfaces filtered on `addresses.private-ip-address`).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;

use super::error::{classify, AwsError, CallContext};
use crate::probe::snapshot::NetworkInterfaceSnapshot;

pub const DESCRIBE_NETWORK_INTERFACES: &str = "ec2:DescribeNetworkInterfaces";
/// Values per EC2 filter.
pub const ADDRESSES_PER_CALL: usize = 200;

/// private IP -> interface, for the interfaces holding any of `ips`.
pub async fn describe_network_interfaces(
    client: &aws_sdk_ec2::Client,
    endpoint: Option<&str>,
    ips: &[String],
) -> Result<BTreeMap<String, NetworkInterfaceSnapshot>, AwsError> {
    let ctx = CallContext {
        iam_action: DESCRIBE_NETWORK_INTERFACES,
        resource: None,
        endpoint,
    };
    let output = client
        .describe_network_interfaces()
        .filters(
            Filter::builder()
                .name("addresses.private-ip-address")
                .set_values(Some(ips.to_vec()))
                .build(),
        )
        .send()
        .await
        .map_err(|e| classify(ctx, e))?;
    let mut found = BTreeMap::new();
    for eni in output.network_interfaces() {
        let snapshot = NetworkInterfaceSnapshot {
            id: eni.network_interface_id().unwrap_or("").to_string(),
            interface_type: eni.interface_type().map(|t| t.as_str().to_string()),
            description: eni.description().map(str::to_string),
            requester_id: eni.requester_id().map(str::to_string),
            groups: eni
                .groups()
                .iter()
                .filter_map(|g| g.group_name().map(str::to_string))
                .collect(),
        };
        for address in eni.private_ip_addresses() {
            if let Some(ip) = address.private_ip_address() {
                if ips.iter().any(|wanted| wanted == ip) {
                    found.insert(ip.to_string(), snapshot.clone());
                }
            }
        }
    }
    Ok(found)
}
