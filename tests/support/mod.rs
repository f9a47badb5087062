//! Shared harness of the integration tests: moto in server mode and small fake AWS JSON
//! endpoints, all on 127.0.0.1. Use it from a test file with `mod support;`.
#![allow(dead_code)]

pub mod fake_aws;
pub mod moto;
