//! The AWS edge of the service: adapters over the AWS SDKs and `exec`, the native ECS Exec client
//! (SSM Session Manager data channel) that runs a command in a task's container without the AWS
//! CLI or session-manager-plugin.

pub mod exec;
