//! `[[services]]`, `[restart_loop]` and `[imap_auth]`: what the ContainerRestartLoop and
//! IMAPAuthFailureSpike runbooks read. The services are the only names the restart-loop runbook
//! will look at (an alert's `service_name` label is checked against them before any AWS call);
//! the rollback command is a template filled with configured names and the tag AWS reports,
//! never with alert text. Defaults match Cabalmail (`cabalmail/cabal-infra`'s Terraform: service
//! `cabal-<name>`, task family `cabal-<name>`, log group `/ecs/cabal-<name>`, ECS Exec enabled).

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// One ECS service of the cluster (`[[services]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// The ECS service name (`cabal-imap`), as the alert's `service_name` label says it.
    pub name: String,
    /// Its CloudWatch log group.
    pub log_group: String,
    /// The name the deploy script takes (`imap`, `prometheus`): ECR repository `cabal-<tier>`.
    pub tier: String,
    /// Whether its tasks run with ECS Exec enabled.
    #[serde(default)]
    pub exec_expected: bool,
}

/// The configured services, Cabalmail's by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Services(pub Vec<ServiceConfig>);

/// Cabalmail's ECS services: the mail tiers and the monitoring stack.
pub const CABALMAIL_SERVICES: &[&str] = &[
    "imap",
    "smtp-in",
    "smtp-out",
    "sinkhole",
    "alertmanager",
    "prometheus",
    "grafana",
    "healthchecks",
    "uptime-kuma",
    "ntfy",
    "cloudwatch-exporter",
    "cloudwatch-exporter-us-east-1",
    "blackbox-exporter",
    "node-exporter",
];

impl Default for Services {
    fn default() -> Self {
        Services(
            CABALMAIL_SERVICES
                .iter()
                .map(|name| ServiceConfig {
                    name: format!("cabal-{name}"),
                    log_group: format!("/ecs/cabal-{name}"),
                    // The us-east-1 exporter runs the cloudwatch-exporter image.
                    tier: name.strip_suffix("-us-east-1").unwrap_or(name).to_string(),
                    exec_expected: true,
                })
                .collect(),
        )
    }
}

impl Services {
    /// The configured service of that name; None for anything else (an alert label naming a
    /// service we do not know).
    pub fn get(&self, name: &str) -> Option<&ServiceConfig> {
        self.0.iter().find(|s| s.name == name)
    }

    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|s| s.name.clone()).collect()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (index, service) in self.0.iter().enumerate() {
            for (field, value) in [
                ("name", &service.name),
                ("log_group", &service.log_group),
                ("tier", &service.tier),
            ] {
                if value.trim().is_empty() {
                    return Err(ConfigError::invalid(
                        &format!("services[{index}].{field}"),
                        "must not be empty",
                    ));
                }
            }
            if self.0[..index].iter().any(|s| s.name == service.name) {
                return Err(ConfigError::invalid(
                    &format!("services[{index}].name"),
                    format!("{} is listed twice", service.name),
                ));
            }
        }
        Ok(())
    }
}

/// `[restart_loop]`: the ContainerRestartLoop runbook's thresholds and its rollback command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RestartLoopConfig {
    /// The rollback the verdict prints (never runs) for an image regression. Placeholders:
    /// `{tier}`, `{previous_tag}`, `{cluster}`, `{service}`; each is filled from configuration
    /// or from AWS's answers and must be a plain word, else no command is printed.
    pub rollback_command: String,
    /// How many of the service's last stopped tasks are described.
    pub stopped_tasks: usize,
    /// From this many configured services below their desired count, the cause is the cluster.
    pub cluster_wide_services: usize,
    /// The CloudWatch Logs filter pattern of the service's error lines: the runbook's, with the
    /// capitalised forms Dovecot writes (`Error:`, `Fatal:`, `Panic:`; CloudWatch's terms are
    /// case-sensitive) and the `failed to chown` that rule 2 looks for.
    pub log_filter_pattern: String,
    /// At most this many error lines are read.
    pub log_max_events: usize,
    /// How far back the error lines are read, in seconds (the alert waits 30 min).
    pub log_window_secs: u64,
}

impl Default for RestartLoopConfig {
    fn default() -> Self {
        RestartLoopConfig {
            rollback_command:
                ".github/scripts/deploy-ecs-service.sh {tier} {previous_tag} {cluster} {service}"
                    .into(),
            stopped_tasks: 5,
            cluster_wide_services: 2,
            log_filter_pattern:
                "?ERROR ?Error ?error ?Exception ?FATAL ?Fatal ?fatal ?Panic ?\"failed to chown\""
                    .into(),
            log_max_events: 200,
            log_window_secs: 3600,
        }
    }
}

impl RestartLoopConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.rollback_command.contains("{previous_tag}") {
            return Err(ConfigError::invalid(
                "restart_loop.rollback_command",
                "must contain {previous_tag} (the image tag to roll back to)",
            ));
        }
        for (key, value) in [
            ("restart_loop.stopped_tasks", self.stopped_tasks),
            (
                "restart_loop.cluster_wide_services",
                self.cluster_wide_services,
            ),
            ("restart_loop.log_max_events", self.log_max_events),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key, "must be at least 1"));
            }
        }
        if self.stopped_tasks > 100 {
            return Err(ConfigError::invalid(
                "restart_loop.stopped_tasks",
                "must be at most 100 (one DescribeTasks call)",
            ));
        }
        if self.log_window_secs == 0 {
            return Err(ConfigError::invalid(
                "restart_loop.log_window_secs",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// `[imap_auth]`: the IMAPAuthFailureSpike runbook's parameter and thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImapAuthConfig {
    /// The SSM parameter holding the master password: only its metadata (last modified time,
    /// version) is read, never its value.
    pub master_password_parameter: String,
    /// One source trying this many distinct user names is guessing.
    pub guessing_min_users: usize,
    /// Failures for this many distinct users, or more, with no success: every user fails.
    pub every_user_min_users: usize,
    /// At most this many login lines are read from the imap log group.
    pub log_max_events: usize,
}

impl Default for ImapAuthConfig {
    fn default() -> Self {
        ImapAuthConfig {
            master_password_parameter: "/cabal/master_password".into(),
            guessing_min_users: 5,
            every_user_min_users: 3,
            log_max_events: 5000,
        }
    }
}

impl ImapAuthConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.master_password_parameter.starts_with('/') {
            return Err(ConfigError::invalid(
                "imap_auth.master_password_parameter",
                "must be an SSM parameter path such as /cabal/master_password",
            ));
        }
        for (key, value) in [
            ("imap_auth.guessing_min_users", self.guessing_min_users),
            ("imap_auth.every_user_min_users", self.every_user_min_users),
            ("imap_auth.log_max_events", self.log_max_events),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key, "must be at least 1"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_cabalmails_and_validate() {
        let services = Services::default();
        services.validate().unwrap();
        let imap = services.get("cabal-imap").unwrap();
        assert_eq!(imap.log_group, "/ecs/cabal-imap");
        assert_eq!(imap.tier, "imap");
        let east = services.get("cabal-cloudwatch-exporter-us-east-1").unwrap();
        assert_eq!(east.tier, "cloudwatch-exporter");
        assert!(services.get("cabal-nope").is_none());
        RestartLoopConfig::default().validate().unwrap();
        ImapAuthConfig::default().validate().unwrap();
    }

    #[test]
    fn bad_values_name_the_key() {
        let mut services = Services::default();
        services.0.push(services.0[0].clone());
        assert!(services
            .validate()
            .unwrap_err()
            .to_string()
            .contains("listed twice"));
        let bad = RestartLoopConfig {
            rollback_command: "deploy {tier}".into(),
            ..RestartLoopConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("restart_loop.rollback_command"));
        let bad = ImapAuthConfig {
            master_password_parameter: "cabal/master".into(),
            ..ImapAuthConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("imap_auth.master_password_parameter"));
    }
}
