//! The one place where `[aws]` becomes an `SdkConfig` and per-service clients.
//!
//! Region and profile come from the configuration when set, else from the SDK's default chain.
//! Every client gets an explicit endpoint when `aws.endpoint_url` or `aws.endpoints.<service>` is
//! set (that is how tests reach moto on loopback). The SDK's own retries are turned off: the
//! probes retry throttled calls themselves, within their deadline (`retry.rs`), so that a retry
//! never outlives the report it feeds.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;

use crate::config::AwsConfig;

/// The service keys of `aws.endpoints` this module reads.
pub const SERVICE_LOGS: &str = "logs";
pub const SERVICE_EC2: &str = "ec2";
pub const SERVICE_ECS: &str = "ecs";
pub const SERVICE_DYNAMODB: &str = "dynamodb";
pub const SERVICE_SSM: &str = "ssm";

/// Builds the shared SDK configuration from `[aws]`.
///
/// `credentials` replaces the default credential chain (tests pass static fake keys; production
/// passes `None`). `connect_timeout` bounds each TCP connect; whole-call deadlines belong to the
/// probes.
pub async fn load_sdk_config(
    aws: &AwsConfig,
    connect_timeout: Duration,
    credentials: Option<SharedCredentialsProvider>,
) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(connect_timeout)
                .build(),
        );
    if let Some(region) = &aws.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &aws.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(provider) = credentials {
        loader = loader.credentials_provider(provider);
    }
    loader.load().await
}

/// The clients of the services the probes read, each with its endpoint override applied.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub ecs: aws_sdk_ecs::Client,
    /// SSM: the master-password parameter's metadata only.
    pub ssm: aws_sdk_ssm::Client,
    /// Endpoint of each client when overridden, for error messages ("cannot reach ...").
    pub endpoints: Endpoints,
}

/// The endpoint overrides in force, by service.
#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    pub logs: Option<String>,
    pub ec2: Option<String>,
    pub ecs: Option<String>,
    pub ssm: Option<String>,
}

impl AwsClients {
    /// Builds the three clients from one shared `SdkConfig`.
    pub fn new(sdk: &SdkConfig, aws: &AwsConfig) -> AwsClients {
        let endpoints = Endpoints {
            logs: aws.endpoint_for(SERVICE_LOGS).map(str::to_string),
            ec2: aws.endpoint_for(SERVICE_EC2).map(str::to_string),
            ecs: aws.endpoint_for(SERVICE_ECS).map(str::to_string),
            ssm: aws.endpoint_for(SERVICE_SSM).map(str::to_string),
        };
        let mut logs = aws_sdk_cloudwatchlogs::config::Builder::from(sdk);
        if let Some(url) = &endpoints.logs {
            logs = logs.endpoint_url(url);
        }
        let mut ec2 = aws_sdk_ec2::config::Builder::from(sdk);
        if let Some(url) = &endpoints.ec2 {
            ec2 = ec2.endpoint_url(url);
        }
        let mut ecs = aws_sdk_ecs::config::Builder::from(sdk);
        if let Some(url) = &endpoints.ecs {
            ecs = ecs.endpoint_url(url);
        }
        let mut ssm = aws_sdk_ssm::config::Builder::from(sdk);
        if let Some(url) = &endpoints.ssm {
            ssm = ssm.endpoint_url(url);
        }
        AwsClients {
            ssm: aws_sdk_ssm::Client::from_conf(ssm.build()),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(logs.build()),
            ec2: aws_sdk_ec2::Client::from_conf(ec2.build()),
            ecs: aws_sdk_ecs::Client::from_conf(ecs.build()),
            endpoints,
        }
    }

    /// `load_sdk_config` then `new`: the usual way to get the clients.
    pub async fn load(
        aws: &AwsConfig,
        connect_timeout: Duration,
        credentials: Option<SharedCredentialsProvider>,
    ) -> AwsClients {
        let sdk = load_sdk_config(aws, connect_timeout, credentials).await;
        AwsClients::new(&sdk, aws)
    }
}
