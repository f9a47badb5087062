//! Egress per availability zone (pure). Cabalmail runs one NAT per zone (`cabal-nat-<n>`) and one
//! private route table per zone (`cabal-private-rt-<n>`) whose default route goes through it: a
//! task's mail, logs and ECS Exec agent leave through its own zone's NAT, so "some NAT runs" says
//! nothing about the zone of a deferring task. Per zone this finds the route table covering it,
//! the NAT its default route targets (or, without route tables, the NAT placed in the zone), and
//! whether that path works: the NAT running, the route active, a NAT instance's
//! source/destination check off.

use std::collections::BTreeMap;

use serde::Serialize;

use super::snapshot::{NatEntry, NatSnapshot, RouteTableEntry};

/// One zone's egress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ZoneEgress {
    /// The NAT the zone leaves through (by route, else by placement); None when none is known.
    pub nat_id: Option<String>,
    pub nat_name: Option<String>,
    /// EC2's state of that NAT (`running`, `stopped`, `available`, ...).
    pub nat_state: Option<String>,
    /// `instance` or `gateway`.
    pub nat_kind: Option<&'static str>,
    pub source_dest_check: Option<bool>,
    pub route_table: Option<String>,
    pub route_target: Option<String>,
    /// `active`, `blackhole`, or `none` (the table has no default route).
    pub route_state: Option<String>,
    /// Whether egress works: Some(false) broken, None unknown.
    pub works: Option<bool>,
    /// Why it is broken, in words; None when it works or is unknown.
    pub problem: Option<String>,
}

impl ZoneEgress {
    pub fn broken(&self) -> bool {
        self.works == Some(false)
    }
}

fn running(entry: &NatEntry, gateway: bool) -> bool {
    entry.state == if gateway { "available" } else { "running" }
}

/// The zones of everything the NAT probe found, each with its egress.
pub fn zone_egress(nat: &NatSnapshot) -> BTreeMap<String, ZoneEgress> {
    let mut zones: Vec<String> = nat
        .instances
        .iter()
        .chain(nat.gateways.iter())
        .filter_map(|e| e.availability_zone.clone())
        .chain(
            nat.route_tables
                .iter()
                .flatten()
                .flat_map(|t| t.availability_zones.iter().cloned()),
        )
        .collect();
    zones.sort();
    zones.dedup();
    zones
        .into_iter()
        .map(|zone| {
            let egress = one_zone(nat, &zone);
            (zone, egress)
        })
        .collect()
}

fn one_zone(nat: &NatSnapshot, zone: &str) -> ZoneEgress {
    let table: Option<&RouteTableEntry> = nat
        .route_tables
        .iter()
        .flatten()
        .find(|t| t.availability_zones.iter().any(|z| z == zone));
    let by_route = table
        .and_then(|t| t.default_route.as_ref())
        .and_then(|route| find_target(nat, &route.target));
    // Without a route to a known NAT: the NAT placed in the zone, a working one first.
    let placed = || {
        let in_zone = |(e, _): &(&NatEntry, bool)| e.availability_zone.as_deref() == Some(zone);
        let candidates: Vec<(&NatEntry, bool)> = entries(nat).filter(in_zone).collect();
        candidates
            .iter()
            .find(|(e, gw)| running(e, *gw))
            .or(candidates.first())
            .copied()
    };
    let found = by_route.or_else(placed);
    let mut egress = ZoneEgress {
        nat_id: found.map(|(e, _)| e.id.clone()),
        nat_name: found.and_then(|(e, _)| e.name.clone()),
        nat_state: found.map(|(e, _)| e.state.clone()),
        nat_kind: found.map(|(_, gw)| if gw { "gateway" } else { "instance" }),
        source_dest_check: found.and_then(|(e, _)| e.source_dest_check),
        route_table: table.map(|t| t.id.clone()),
        route_target: table
            .and_then(|t| t.default_route.as_ref())
            .map(|r| r.target.clone()),
        route_state: table.map(|t| {
            t.default_route
                .as_ref()
                .map_or_else(|| "none".to_string(), |r| r.state.clone())
        }),
        works: None,
        problem: None,
    };
    egress.problem = problem(table, found);
    egress.works = if egress.problem.is_some() {
        Some(false)
    } else {
        let route_ok = match table {
            Some(t) => t
                .default_route
                .as_ref()
                .is_some_and(|r| r.state == "active"),
            // Route tables not read: the NAT alone decides.
            None => nat.route_tables.is_none(),
        };
        (found.is_some_and(|(e, gw)| running(e, gw)) && route_ok).then_some(true)
    };
    egress
}

fn entries(nat: &NatSnapshot) -> impl Iterator<Item = (&NatEntry, bool)> {
    nat.instances
        .iter()
        .map(|e| (e, false))
        .chain(nat.gateways.iter().map(|e| (e, true)))
}

/// The NAT a route target names: an instance or gateway by id, or the instance owning the
/// interface.
fn find_target<'a>(nat: &'a NatSnapshot, target: &str) -> Option<(&'a NatEntry, bool)> {
    entries(nat).find(|(e, _)| e.id == target || e.network_interfaces.iter().any(|n| n == target))
}

/// What breaks the zone's egress, in words.
fn problem(table: Option<&RouteTableEntry>, found: Option<(&NatEntry, bool)>) -> Option<String> {
    if let Some(t) = table {
        match &t.default_route {
            None => {
                return Some(format!(
                    "route table {} has no default route (0.0.0.0/0)",
                    t.id
                ))
            }
            Some(r) if r.state == "blackhole" => {
                return Some(format!(
                    "the default route of {} is a blackhole: its target {} is gone",
                    t.id, r.target
                ))
            }
            Some(_) => {}
        }
    }
    let (entry, gateway) = found?;
    if !running(entry, gateway) {
        return Some(format!(
            "NAT {} ({}) is {}",
            entry.id,
            entry.name.as_deref().unwrap_or("unnamed"),
            entry.state
        ));
    }
    if !gateway && entry.source_dest_check == Some(true) {
        return Some(format!(
            "NAT instance {} has its source/destination check on: it forwards nothing",
            entry.id
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::snapshot::DefaultRoute;

    fn instance(id: &str, az: &str, state: &str, eni: &str) -> NatEntry {
        NatEntry {
            id: id.into(),
            name: Some(format!("cabal-nat-{}", &az[az.len() - 1..])),
            state: state.into(),
            public_ip: None,
            availability_zone: Some(az.into()),
            subnet_id: None,
            launch_time: None,
            source_dest_check: Some(false),
            network_interfaces: vec![eni.into()],
        }
    }

    fn table(id: &str, az: &str, target: &str, state: &str) -> RouteTableEntry {
        RouteTableEntry {
            id: id.into(),
            name: Some(format!("cabal-private-rt-{id}")),
            availability_zones: vec![az.into()],
            default_route: Some(DefaultRoute {
                target: target.into(),
                state: state.into(),
            }),
        }
    }

    fn two_zones() -> NatSnapshot {
        NatSnapshot {
            instances: vec![
                instance("i-0a", "us-east-1a", "running", "eni-0a"),
                instance("i-0b", "us-east-1b", "running", "eni-0b"),
            ],
            route_tables: Some(vec![
                table("rtb-0a", "us-east-1a", "eni-0a", "active"),
                table("rtb-0b", "us-east-1b", "eni-0b", "active"),
            ]),
            ..NatSnapshot::default()
        }
    }

    #[test]
    fn each_zone_leaves_through_the_nat_its_route_targets() {
        let zones = zone_egress(&two_zones());
        assert_eq!(zones.len(), 2);
        assert!(zones.values().all(|z| z.works == Some(true)));
        assert_eq!(zones["us-east-1b"].nat_id.as_deref(), Some("i-0b"));
        assert_eq!(zones["us-east-1b"].route_table.as_deref(), Some("rtb-0b"));
    }

    #[test]
    fn a_stopped_nat_breaks_its_zone_only() {
        let mut nat = two_zones();
        nat.instances[1].state = "stopped".into();
        let zones = zone_egress(&nat);
        assert!(zones["us-east-1a"].works == Some(true));
        assert!(zones["us-east-1b"].broken());
        assert_eq!(
            zones["us-east-1b"].problem.as_deref(),
            Some("NAT i-0b (cabal-nat-b) is stopped")
        );
    }

    #[test]
    fn a_blackhole_route_breaks_its_zone_though_a_new_nat_runs_there() {
        let mut nat = two_zones();
        // The NAT of zone b was replaced: a new instance, a new interface; the route still
        // names the old one.
        nat.instances[1] = instance("i-0c", "us-east-1b", "running", "eni-0c");
        nat.route_tables.as_mut().unwrap()[1] =
            table("rtb-0b", "us-east-1b", "eni-0b", "blackhole");
        let zones = zone_egress(&nat);
        let b = &zones["us-east-1b"];
        assert!(b.broken());
        assert_eq!(b.nat_id.as_deref(), Some("i-0c"));
        assert_eq!(b.route_state.as_deref(), Some("blackhole"));
        assert!(b.problem.as_deref().unwrap().contains("eni-0b is gone"));
    }

    #[test]
    fn source_dest_check_on_and_a_missing_default_route_break_a_zone() {
        let mut nat = two_zones();
        nat.instances[0].source_dest_check = Some(true);
        nat.route_tables.as_mut().unwrap()[1].default_route = None;
        let zones = zone_egress(&nat);
        assert!(zones["us-east-1a"]
            .problem
            .as_deref()
            .unwrap()
            .contains("source/destination check on"));
        assert_eq!(zones["us-east-1b"].route_state.as_deref(), Some("none"));
        assert!(zones["us-east-1b"].broken());
    }

    #[test]
    fn without_route_tables_the_nat_placed_in_the_zone_decides_and_unknowns_stay_unknown() {
        let mut nat = two_zones();
        nat.route_tables = None;
        nat.instances[0].state = "stopped".into();
        let zones = zone_egress(&nat);
        assert!(zones["us-east-1a"].broken());
        assert_eq!(zones["us-east-1b"].works, Some(true));
        // A route to something that is not a known NAT (a gateway outside the pattern): unknown.
        let mut nat = two_zones();
        nat.route_tables.as_mut().unwrap()[0] = table("rtb-0a", "us-east-1a", "nat-0ff", "active");
        nat.instances.remove(0);
        let zones = zone_egress(&nat);
        assert_eq!(zones["us-east-1a"].works, None);
        assert_eq!(zone_egress(&NatSnapshot::default()).len(), 0);
    }
}
