//! ECS Exec without the AWS CLI: runs one command in a task's container and returns its output
//! and exit status. ECS `ExecuteCommand` opens the session ([`starter`]); this module then speaks
//! the SSM Session Manager data channel itself ([`codec`], [`session`], [`client`]) and turns the
//! pty's bytes into a result ([`output`]). `docs/ecs-exec.md` explains the design, the
//! prerequisites and where this client differs from AWS's session-manager-plugin.

pub mod client;
pub mod codec;
mod error;
pub mod operation;
pub mod output;
pub mod payloads;
pub mod session;
pub mod starter;

pub use client::ChannelTimings;
pub use error::ExecError;
pub use operation::{exec, ExecOptions, ExecOutput, ExecRequest};
pub use starter::{EcsSessionStarter, ExecSessionStarter, StartRequest, StartedSession};
