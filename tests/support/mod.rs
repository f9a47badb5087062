//! Shared harness of the integration tests, all on 127.0.0.1: the real `cabal-triage` binary,
//! webhook payloads, moto in server mode (CloudWatch Logs, EC2), dynalite (DynamoDB), small fake
//! AWS JSON endpoints, a fake DNS server. Use it
//! from a test file with `mod support;`.
#![allow(dead_code)]

pub mod aws_front;
pub mod dynalite;
pub mod fake_aws;
pub mod fake_dns;
pub mod moto;
pub mod payload;
pub mod service;
