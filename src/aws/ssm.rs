//! SSM adapter: one parameter's metadata (DescribeParameters filtered on its exact name), for the
//! IMAPAuthFailureSpike runbook. Never GetParameter: the value is not ours to read.

use aws_sdk_ssm::types::ParameterStringFilter;

use super::ecs::offset_time;
use super::error::{classify, AwsError, CallContext};
use crate::probe::snapshot::ParameterSnapshot;

pub const DESCRIBE_PARAMETERS: &str = "ssm:DescribeParameters";

/// The parameter's last modified time and version; None when no parameter has that name.
pub async fn describe_parameter(
    client: &aws_sdk_ssm::Client,
    endpoint: Option<&str>,
    name: &str,
) -> Result<Option<ParameterSnapshot>, AwsError> {
    let ctx = CallContext {
        iam_action: DESCRIBE_PARAMETERS,
        resource: Some(name),
        endpoint,
    };
    let filter = ParameterStringFilter::builder()
        .key("Name")
        .option("Equals")
        .values(name)
        .build()
        .map_err(|e| AwsError::Other {
            action: DESCRIBE_PARAMETERS.to_string(),
            detail: e.to_string(),
        })?;
    let output = client
        .describe_parameters()
        .parameter_filters(filter)
        .send()
        .await
        .map_err(|e| classify(ctx, e))?;
    Ok(output
        .parameters()
        .iter()
        .find(|p| p.name() == Some(name))
        .map(|p| ParameterSnapshot {
            last_modified: offset_time(p.last_modified_date()),
            version: Some(p.version()),
        }))
}
