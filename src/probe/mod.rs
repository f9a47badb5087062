//! Probes: the I/O that gathers evidence (AWS, ECS Exec, DNS). Each probe has a deadline and
//! reports failures as data, so a report always goes out.

pub mod dnsbl;
