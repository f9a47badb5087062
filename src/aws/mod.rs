//! The AWS edge: one loader that turns `[aws]` into SDK clients, thin adapters over the three
//! services the probes read (CloudWatch Logs, EC2, ECS), the mapping of every SDK error to a
//! sentence an operator can act on, and the deadline-bounded retry of throttled calls.
//!
//! Nothing here decides anything: `probes` implements the probe traits (`crate::probe`) with
//! these adapters, and the runbooks turn what they return into evidence. Deadlines and the
//! backoff formula are `crate::timing`'s. `exec` is the native ECS Exec client (SSM Session
//! Manager data channel), which runs a command in a task's container without the AWS CLI or
//! session-manager-plugin.

pub mod ec2;
pub mod ecs;
pub mod ecs_service;
pub mod error;
pub mod exec;
pub mod logs;
pub mod probes;
pub mod retry;
pub mod sdk;

pub use error::AwsError;
pub use sdk::AwsClients;
