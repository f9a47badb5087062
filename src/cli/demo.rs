//! `cabal-triage demo`: the whole pipeline on this machine, with nothing to set up
//! (`app::demo`). This file gives it a temporary directory and the terminal: a line per step,
//! then the annotation as the terminal renders it.

use super::CliError;
use crate::alert::AlertStatus;
use crate::app::demo::{self, Triaged};
use crate::config::Config;
use crate::report::render::{text, Annotation, Stage};

pub fn run(example: Option<&str>) -> Result<(), CliError> {
    let example = demo::example(example.unwrap_or(demo::DEFAULT_EXAMPLE))
        .map_err(|e| CliError::Input(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    let dir = std::env::temp_dir().join(format!("cabal-triage-demo-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Runtime(format!("cannot create {}: {e}", dir.display())))?;
    let say = |line: &str| println!("{line}");
    let result = runtime.block_on(demo::run(&dir, example, &say));
    let _ = std::fs::remove_dir_all(&dir);
    let triaged = result.map_err(|e| CliError::Runtime(e.to_string()))?;
    say("");
    print!("{}", annotation_text(&triaged));
    Ok(())
}

/// The annotation as the terminal renders it, with the episode's link into the API.
fn annotation_text(triaged: &Triaged) -> String {
    let Triaged {
        episode_id,
        base,
        alert,
        report,
    } = triaged;
    text::render(&Annotation {
        episode_id,
        alert,
        status: AlertStatus::Firing,
        ends_at: None,
        stage: Stage::Triaged(report),
        repeats: 0,
        episode_url: Some(format!("{base}/api/v1/episodes/{episode_id}")),
        links: Vec::new(),
        show_local_parts: Config::default().privacy.show_local_parts,
    })
}
