//! The EC2 implementation of `probe::NatProbe`: the instances and NAT gateways whose `Name` tag
//! matches `nat.tag_pattern` and the private route tables matching `nat.route_table_pattern`
//! and the Elastic IPs matching `nat.address_pattern` (four reads side by side), then one
//! DescribeSubnets for the zones of the gateways' and the
//! route tables' subnets; every page, each call retried on throttling within the deadline.
//!
//! The pattern is sent to EC2 as a `tag:Name` filter and checked again on this side with the
//! same wildcard rules (`*`, `?`), so a backend that ignores the filter (moto does for NAT
//! gateways) cannot make an unrelated gateway look like the NAT.

use async_trait::async_trait;
use tokio::time::Instant;
use wildmatch::WildMatch;

use crate::aws::ec2::{
    describe_addresses, describe_instances_page, describe_nat_gateways_page,
    describe_route_tables_page, describe_subnet_zones, RawAddress, RawInstance, RawNatGateway,
    RawRouteTable, DESCRIBE_ADDRESSES, DESCRIBE_INSTANCES, DESCRIBE_NAT_GATEWAYS,
    DESCRIBE_ROUTE_TABLES, DESCRIBE_SUBNETS,
};
use crate::aws::{retry, AwsClients, AwsError};
use crate::config::Config;
use crate::probe::nat::NatProbeResult;
use crate::probe::snapshot::{AddressEntry, DefaultRoute, NatEntry, NatSnapshot, RouteTableEntry};
use crate::probe::{NatProbe, ProbeError};
use crate::timing::{Backoff, Deadline};

fn name_matches(pattern: &WildMatch, name: Option<&str>) -> bool {
    name.is_some_and(|n| pattern.matches(n))
}

fn instance_entry(i: RawInstance) -> NatEntry {
    NatEntry {
        id: i.id,
        name: i.name,
        state: i.state,
        public_ip: i.public_ip,
        availability_zone: i.availability_zone,
        subnet_id: None,
        launch_time: i.launch_time,
        source_dest_check: i.source_dest_check,
        network_interfaces: i.network_interfaces,
    }
}

fn gateway_entry(g: RawNatGateway) -> NatEntry {
    NatEntry {
        id: g.id,
        name: g.name,
        state: g.state,
        public_ip: g.public_ip,
        availability_zone: None,
        subnet_id: g.subnet_id,
        launch_time: g.create_time,
        source_dest_check: None,
        network_interfaces: Vec::new(),
    }
}

/// A route table with its subnets' zones (sorted, without repeats; a subnet whose zone is
/// unknown adds none).
fn route_table_entry(t: RawRouteTable, zones: &[(String, String)]) -> RouteTableEntry {
    let mut availability_zones: Vec<String> = t
        .subnet_ids
        .iter()
        .filter_map(|s| {
            zones
                .iter()
                .find(|(id, _)| id == s)
                .map(|(_, az)| az.clone())
        })
        .collect();
    availability_zones.sort();
    availability_zones.dedup();
    RouteTableEntry {
        id: t.id,
        name: t.name,
        availability_zones,
        default_route: t
            .default_route
            .map(|(target, state)| DefaultRoute { target, state }),
    }
}

/// The NAT probe against EC2.
#[derive(Debug, Clone)]
pub struct AwsNatProbe {
    client: aws_sdk_ec2::Client,
    endpoint: Option<String>,
    tag_pattern: String,
    route_table_pattern: String,
    address_pattern: String,
    backoff: Backoff,
}

impl AwsNatProbe {
    pub fn new(clients: &AwsClients, config: &Config) -> AwsNatProbe {
        AwsNatProbe {
            client: clients.ec2.clone(),
            endpoint: clients.endpoints.ec2.clone(),
            tag_pattern: config.nat.tag_pattern.clone(),
            route_table_pattern: config.nat.route_table_pattern.clone(),
            address_pattern: config.nat.address_pattern.clone(),
            backoff: config.probes.throttle_backoff(),
        }
    }

    async fn instances(
        &self,
        deadline: Deadline,
        found: &mut Vec<NatEntry>,
    ) -> Result<(), AwsError> {
        let pattern = WildMatch::new(&self.tag_pattern);
        every_page(
            |token| {
                retry::call(DESCRIBE_INSTANCES, deadline, self.backoff, move || {
                    describe_instances_page(
                        &self.client,
                        self.endpoint.as_deref(),
                        &self.tag_pattern,
                        token.clone(),
                    )
                })
            },
            |page| {
                found.extend(
                    page.into_iter()
                        .filter(|i| name_matches(&pattern, i.name.as_deref()))
                        .map(instance_entry),
                )
            },
        )
        .await
    }

    async fn gateways(
        &self,
        deadline: Deadline,
        found: &mut Vec<NatEntry>,
    ) -> Result<(), AwsError> {
        let pattern = WildMatch::new(&self.tag_pattern);
        every_page(
            |token| {
                retry::call(DESCRIBE_NAT_GATEWAYS, deadline, self.backoff, move || {
                    describe_nat_gateways_page(
                        &self.client,
                        self.endpoint.as_deref(),
                        &self.tag_pattern,
                        token.clone(),
                    )
                })
            },
            |page| {
                found.extend(
                    page.into_iter()
                        .filter(|g| name_matches(&pattern, g.name.as_deref()))
                        .map(gateway_entry),
                )
            },
        )
        .await
    }

    async fn route_tables(
        &self,
        deadline: Deadline,
        found: &mut Vec<RawRouteTable>,
    ) -> Result<(), AwsError> {
        let pattern = WildMatch::new(&self.route_table_pattern);
        every_page(
            |token| {
                retry::call(DESCRIBE_ROUTE_TABLES, deadline, self.backoff, move || {
                    describe_route_tables_page(
                        &self.client,
                        self.endpoint.as_deref(),
                        &self.route_table_pattern,
                        token.clone(),
                    )
                })
            },
            |page| {
                found.extend(
                    page.into_iter()
                        .filter(|t| name_matches(&pattern, t.name.as_deref())),
                )
            },
        )
        .await
    }

    /// The Elastic IPs whose Name matches the address pattern (checked again on this side).
    async fn addresses(&self, deadline: Deadline) -> Result<Vec<RawAddress>, AwsError> {
        let pattern = WildMatch::new(&self.address_pattern);
        let found = retry::call(DESCRIBE_ADDRESSES, deadline, self.backoff, || {
            describe_addresses(
                &self.client,
                self.endpoint.as_deref(),
                &self.address_pattern,
            )
        })
        .await?;
        Ok(found
            .into_iter()
            .filter(|a| name_matches(&pattern, a.name.as_deref()))
            .collect())
    }

    /// The zones of the given subnets (none asked: no call).
    async fn subnet_zones(
        &self,
        deadline: Deadline,
        mut subnet_ids: Vec<String>,
    ) -> Result<Vec<(String, String)>, AwsError> {
        subnet_ids.sort();
        subnet_ids.dedup();
        if subnet_ids.is_empty() {
            return Ok(Vec::new());
        }
        let subnet_ids = &subnet_ids;
        retry::call(DESCRIBE_SUBNETS, deadline, self.backoff, move || {
            describe_subnet_zones(&self.client, self.endpoint.as_deref(), subnet_ids)
        })
        .await
    }
}

#[async_trait]
impl NatProbe for AwsNatProbe {
    async fn describe(&self, deadline: Deadline) -> NatProbeResult {
        let started = Instant::now();
        let mut instances = Vec::new();
        let mut gateways = Vec::new();
        let mut tables = Vec::new();
        let (inst, gw, rt, eips) = tokio::join!(
            self.instances(deadline, &mut instances),
            self.gateways(deadline, &mut gateways),
            self.route_tables(deadline, &mut tables),
            self.addresses(deadline)
        );
        let (addresses, eips_error) = match eips {
            Ok(found) => {
                let mut entries: Vec<AddressEntry> = found
                    .into_iter()
                    .map(|a| AddressEntry {
                        public_ip: a.public_ip,
                        allocation_id: a.allocation_id,
                        instance_id: a.instance_id,
                        name: a.name,
                        network_interface_id: a.network_interface_id,
                    })
                    .collect();
                entries.sort_by(|a, b| a.name.cmp(&b.name).then(a.public_ip.cmp(&b.public_ip)));
                (Some(entries), None)
            }
            Err(e) => (None, Some(e)),
        };
        let wanted: Vec<String> = gateways
            .iter()
            .filter_map(|g| g.subnet_id.clone())
            .chain(tables.iter().flat_map(|t| t.subnet_ids.iter().cloned()))
            .collect();
        let (zones, zones_error) = match self.subnet_zones(deadline, wanted).await {
            Ok(zones) => (zones, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        for gateway in &mut gateways {
            gateway.availability_zone = gateway
                .subnet_id
                .as_ref()
                .and_then(|s| zones.iter().find(|(id, _)| id == s))
                .map(|(_, az)| az.clone());
        }
        let route_tables = match &rt {
            // Tables read before a failure are kept only when the read finished: a partial
            // list would leave zones without their route.
            Ok(()) => {
                let mut entries: Vec<RouteTableEntry> = tables
                    .into_iter()
                    .map(|t| route_table_entry(t, &zones))
                    .collect();
                entries.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
                Some(entries)
            }
            Err(_) => None,
        };
        let errors: Vec<ProbeError> = [inst.err(), gw.err(), rt.err(), zones_error, eips_error]
            .into_iter()
            .flatten()
            .map(ProbeError::from)
            .collect();
        let error = match errors.len() {
            0 => None,
            _ => Some(ProbeError {
                timed_out: errors.iter().all(|e| e.timed_out),
                message: errors
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            }),
        };
        instances.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        gateways.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        NatProbeResult {
            nat: NatSnapshot {
                instances,
                gateways,
                error: error.as_ref().map(|e| e.message.clone()),
                route_tables,
                addresses,
            },
            error,
            elapsed: started.elapsed(),
        }
    }
}

/// Reads every page of a paginated call, handing each page to `on_page` as it arrives (so what
/// was read before a failure is kept), and stops when the token ends or repeats.
async fn every_page<P, F, Fut>(
    mut fetch: F,
    mut on_page: impl FnMut(Vec<P>),
) -> Result<(), AwsError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<P>, Option<String>), AwsError>>,
{
    let mut token: Option<String> = None;
    loop {
        let (page, next) = fetch(token.clone()).await?;
        on_page(page);
        match next {
            Some(next) if token.as_deref() != Some(next.as_str()) => token = Some(next),
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_pattern_matches_numbered_nats_only() {
        let p = WildMatch::new("cabal-nat-*");
        assert!(name_matches(&p, Some("cabal-nat-0")));
        assert!(name_matches(&p, Some("cabal-nat-12")));
        assert!(!name_matches(&p, Some("cabal-nat")));
        assert!(!name_matches(&p, Some("other-nat-0")));
        assert!(!name_matches(&p, None));
    }
}
