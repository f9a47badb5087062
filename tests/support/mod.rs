//! Shared test harness: starting the real `cabal-triage` binary, building webhook payloads.
//! Each integration test file does `mod support;` and uses what it needs.
#![allow(dead_code)]

pub mod fake_dns;
pub mod payload;
pub mod service;
