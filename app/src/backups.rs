//! How the backups stand, for managers: the last change archived and the last base backup, and when either
//! last failed. The server keeps the report as its backup jobs and archive watcher see things; this page and
//! `/metrics` read it.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use loyalty_core::LoyaltyError;
use serde::{Deserialize, Serialize};

/// One archived WAL segment or finished base backup, or one failed attempt at either.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupEvent {
    pub at: DateTime<Utc>,
    /// The WAL segment's name, the base backup's folder, or what went wrong.
    pub detail: String,
}

/// The state of the backups, as of the server's last look.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHealth {
    /// False when this server keeps no backups (no backup folder, or a PostgreSQL of someone else's).
    pub configured: bool,
    pub last_archived: Option<BackupEvent>,
    pub last_archive_failure: Option<BackupEvent>,
    pub last_base_backup: Option<BackupEvent>,
    pub last_base_backup_failure: Option<BackupEvent>,
}

impl BackupHealth {
    /// The last attempt to archive a segment failed.
    pub fn archiving_fails(&self) -> bool {
        failed_last(&self.last_archived, &self.last_archive_failure)
    }

    /// The last base backup attempt failed.
    pub fn base_backup_fails(&self) -> bool {
        failed_last(&self.last_base_backup, &self.last_base_backup_failure)
    }
}

fn failed_last(success: &Option<BackupEvent>, failure: &Option<BackupEvent>) -> bool {
    match (success, failure) {
        (Some(success), Some(failure)) => failure.at > success.at,
        (None, Some(_)) => true,
        (_, None) => false,
    }
}

/// The server's report of its backups, which its backup jobs update and requests read.
#[cfg(feature = "ssr")]
#[derive(Debug, Clone, Default)]
pub struct BackupReport(std::sync::Arc<std::sync::RwLock<BackupHealth>>);

#[cfg(feature = "ssr")]
impl BackupReport {
    /// The report of a server that keeps backups, before its first look.
    pub fn configured() -> Self {
        let health = BackupHealth {
            configured: true,
            ..BackupHealth::default()
        };
        Self(std::sync::Arc::new(std::sync::RwLock::new(health)))
    }

    pub fn read(&self) -> BackupHealth {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn update(&self, change: impl FnOnce(&mut BackupHealth)) {
        change(&mut self.0.write().unwrap_or_else(|e| e.into_inner()));
    }
}

/// How the backups stand (managers).
#[server(endpoint = "backups")]
pub async fn load_backups() -> Result<BackupHealth, LoyaltyError> {
    use crate::request::{answer, current_staff, manager};
    answer(current_staff().and_then(manager).map(|_| {
        use_context::<BackupReport>()
            .map(|report| report.read())
            .unwrap_or_default()
    }))
}

/// Managers see whether the store's data is backed up, and what to look at when it is not.
#[component]
pub fn BackupsPage() -> impl IntoView {
    let health = Resource::new(|| (), |_| load_backups());
    view! {
        <section class="backups">
            <h1>"Backups"</h1>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match health.await {
                        Ok(health) => view! { <BackupStatus health /> }.into_any(),
                        Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

fn when(event: &Option<BackupEvent>) -> String {
    event.as_ref().map_or_else(
        || "never".to_owned(),
        |event| event.at.format("%-d %b %Y %H:%M:%S UTC").to_string(),
    )
}

#[component]
fn BackupStatus(health: BackupHealth) -> impl IntoView {
    if !health.configured {
        return view! {
            <p data-backups="off">
                "This server keeps no backups of its own: it was started without a backup folder, or its \
                 database is run elsewhere, where that database's own backups apply."
            </p>
        }
        .into_any();
    }
    let archive_alert = health.archiving_fails().then(|| {
        let failure = health.last_archive_failure.clone();
        let segment = failure.as_ref().map(|f| f.detail.clone()).unwrap_or_default();
        view! {
            <div class="outcome error" role="alert" data-failing="archive">
                <p class="big">"Changes are not being archived."</p>
                <p>
                    "The last attempt, at " {when(&failure)} ", to copy " <code>{segment}</code>
                    " to the backup folder failed. Changes made since the last archived one would be lost with \
                     the disk. The server's log says why."
                </p>
            </div>
        }
    });
    let base_alert = health.base_backup_fails().then(|| {
        let failure = health.last_base_backup_failure.clone();
        let reason = failure
            .as_ref()
            .map(|f| f.detail.clone())
            .unwrap_or_default();
        view! {
            <div class="outcome error" role="alert" data-failing="base-backup">
                <p class="big">"The last base backup failed."</p>
                <p>{when(&failure)} ": " {reason}</p>
            </div>
        }
    });
    let segment = health
        .last_archived
        .as_ref()
        .map(|event| event.detail.clone())
        .unwrap_or_default();
    let folder = health
        .last_base_backup
        .as_ref()
        .map(|event| event.detail.clone())
        .unwrap_or_default();
    view! {
        {archive_alert}
        {base_alert}
        <dl class="backup-health">
            <dt>"Last change archived"</dt>
            <dd data-archived=health.last_archived.is_some()>
                {when(&health.last_archived)} " " <code>{segment}</code>
            </dd>
            <dt>"Last base backup"</dt>
            <dd data-base-backup=health.last_base_backup.is_some()>
                {when(&health.last_base_backup)} " " <code>{folder}</code>
            </dd>
        </dl>
        <p>
            "Changes are archived as each 16 MB segment of the database's log fills, and at the latest after \
             the server's archive timeout (a minute unless set otherwise); a base backup is taken on a \
             schedule. A restore needs a base backup and every segment archived since."
        </p>
    }
    .into_any()
}
