//! Continuous backup of the embedded cluster into a backup folder (best on another disk): every finished WAL
//! segment is archived by PostgreSQL as it fills, or after the archive timeout, and a base backup is taken on a
//! schedule, the oldest pruned past a retention count. A restore (`crate::restore`) needs the newest base
//! backup and every segment archived since.
//!
//! ```text
//! <folder>/wal/<segment>                       archived WAL, never overwritten
//! <folder>/base/<stamp>/data/                  a base backup (pg_basebackup, plain, with its own WAL)
//! <folder>/base/<stamp>/superuser.password     the cluster's superuser password at the time
//! <folder>/base/<stamp>/finished               when it finished (RFC 3339); only a finished backup has it
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use app::backups::{BackupEvent, BackupReport};
use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::embedded::{EmbeddedPostgres, PgPrograms, create_dir, describe, path_str};

/// Where and how the embedded cluster's backups are kept.
#[derive(Debug, Clone)]
pub struct BackupConfig {
    pub folder: PathBuf,
    /// Time between base backups.
    pub every: Duration,
    /// Base backups kept; older ones go, and with them the WAL only they needed.
    pub keep: usize,
    /// A WAL segment with changes in it is archived at the latest this long after its first change.
    pub archive_timeout: Duration,
}

/// Where the embedded cluster archives its WAL, and how soon a segment that is not full is archived.
#[derive(Debug, Clone)]
pub struct WalArchive {
    pub folder: PathBuf,
    pub timeout: Duration,
}

impl BackupConfig {
    pub fn wal_archive(&self) -> WalArchive {
        WalArchive {
            folder: wal_folder(&self.folder),
            timeout: self.archive_timeout,
        }
    }

    /// Makes the backup folder's parts, owned by the cluster's user, and checks that this user can write them.
    pub async fn prepare(&self, programs: &PgPrograms) -> anyhow::Result<()> {
        let created = !self.folder.exists();
        create_dir(&self.folder, 0o700)?;
        if created {
            programs.give_to_cluster_user(&self.folder).await?;
        }
        for part in [wal_folder(&self.folder), base_folder(&self.folder)] {
            if !part.exists() {
                create_dir(&part, 0o700)?;
                programs.give_to_cluster_user(&part).await?;
            }
            let writable = programs
                .run_system("test", &["-w", path_str(&part)])
                .await?;
            ensure!(
                writable.status.success(),
                "the backup folder {} cannot be written by the database's user (postgres, when the server runs \
                 as root)",
                part.display()
            );
        }
        Ok(())
    }
}

pub fn wal_folder(folder: &Path) -> PathBuf {
    folder.join("wal")
}

fn base_folder(folder: &Path) -> PathBuf {
    folder.join("base")
}

impl WalArchive {
    /// The cluster settings that archive each finished WAL segment into the folder. The copy is synced before
    /// it takes the segment's name by a hard link, which never replaces a file: a segment already archived
    /// with the same bytes (a retry after a crash) counts as archived, one with other bytes fails loudly in
    /// PostgreSQL's log and keeps failing, and PostgreSQL keeps the segment until it succeeds.
    pub fn settings(&self) -> String {
        let dir = shell_path(&self.folder);
        let command = format!(
            "test ! -e {dir}/%f && cp %p {dir}/%f.part && sync {dir}/%f.part && ln {dir}/%f.part {dir}/%f \
             && rm {dir}/%f.part && sync {dir} || cmp %p {dir}/%f"
        );
        format!(
            "# Written by the loyalty server at each start: the WAL archive in the backup folder.\n\
             archive_mode = on\n\
             archive_command = {}\n\
             archive_timeout = {}\n",
            conf_string(&command),
            self.timeout.as_secs().max(1)
        )
    }

    /// The recovery setting that reads archived segments back.
    pub fn restore_command(&self) -> String {
        let dir = shell_path(&self.folder);
        format!(
            "restore_command = {}\n",
            conf_string(&format!("cp {dir}/%f %p"))
        )
    }
}

/// A path as one shell word inside a PostgreSQL command setting, where `%` is special.
fn shell_path(path: &Path) -> String {
    let quoted = format!("'{}'", path.display().to_string().replace('\'', r"'\''"));
    quoted.replace('%', "%%")
}

/// A string value in postgresql.conf's syntax.
pub(crate) fn conf_string(value: &str) -> String {
    format!("'{}'", value.replace('\\', r"\\").replace('\'', "''"))
}

/// A finished base backup in the backup folder.
#[derive(Debug, Clone)]
pub struct BaseBackup {
    pub path: PathBuf,
    pub finished: DateTime<Utc>,
}

impl BaseBackup {
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub fn data(&self) -> PathBuf {
        self.path.join("data")
    }

    pub fn superuser_password(&self) -> PathBuf {
        self.path.join("superuser.password")
    }

    /// The first WAL segment the backup needs, from its backup label.
    fn first_segment(&self) -> anyhow::Result<String> {
        let label_file = self.data().join("backup_label");
        let label = std::fs::read_to_string(&label_file)
            .with_context(|| format!("reading {}", label_file.display()))?;
        label
            .lines()
            .find_map(|line| {
                let rest = line.strip_prefix("START WAL LOCATION:")?;
                let file = rest.split("(file ").nth(1)?;
                Some(file.trim_end_matches(')').trim().to_owned())
            })
            .with_context(|| format!("no start segment in {}", label_file.display()))
    }
}

/// The finished base backups in `folder`, oldest first.
pub fn base_backups(folder: &Path) -> anyhow::Result<Vec<BaseBackup>> {
    let base = base_folder(folder);
    let entries = match std::fs::read_dir(&base) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("reading {}", base.display())),
    };
    let mut backups = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let Ok(finished) = std::fs::read_to_string(path.join("finished")) else {
            continue;
        };
        let finished = DateTime::parse_from_rfc3339(finished.trim())
            .with_context(|| format!("reading {}/finished", path.display()))?
            .to_utc();
        backups.push(BaseBackup { path, finished });
    }
    backups.sort_by_key(|backup| backup.finished);
    Ok(backups)
}

/// Takes a base backup of the running cluster, then prunes the backups past `config.keep` and the WAL that
/// only they needed.
pub async fn take_base_backup(
    cluster: &EmbeddedPostgres,
    config: &BackupConfig,
) -> anyhow::Result<BaseBackup> {
    let programs = cluster.programs();
    config.prepare(programs).await?;
    let started = Utc::now();
    let name = started.format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let partial = base_folder(&config.folder).join(format!("{name}.partial"));
    create_dir(&partial, 0o700)?;
    programs.give_to_cluster_user(&partial).await?;
    let taken = pg_basebackup(cluster, &partial.join("data"), &name).await;
    if let Err(err) = taken {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(err);
    }
    let password = cluster.root().join("superuser.password");
    std::fs::copy(&password, partial.join("superuser.password"))
        .with_context(|| format!("copying {}", password.display()))?;
    let finished = Utc::now();
    std::fs::write(partial.join("finished"), finished.to_rfc3339())
        .context("marking the base backup finished")?;
    let path = base_folder(&config.folder).join(&name);
    std::fs::rename(&partial, &path).context("naming the finished base backup")?;
    prune(programs, config).await?;
    Ok(BaseBackup { path, finished })
}

async fn pg_basebackup(
    cluster: &EmbeddedPostgres,
    target: &Path,
    label: &str,
) -> anyhow::Result<()> {
    let port = cluster.port().to_string();
    let out = cluster
        .programs()
        .run_with_env(
            "pg_basebackup",
            &[
                "--host=127.0.0.1",
                "--port",
                &port,
                "--username=postgres",
                "--no-password",
                "--pgdata",
                path_str(target),
                "--wal-method=stream",
                "--checkpoint=fast",
                "--label",
                label,
            ],
            &[("PGPASSWORD", cluster.superuser_password())],
        )
        .await?;
    if !out.status.success() {
        bail!("pg_basebackup failed: {}", describe(&out));
    }
    Ok(())
}

/// Removes the base backups past the newest `keep`, then the archived WAL older than the oldest kept one
/// needs (`pg_archivecleanup`).
async fn prune(programs: &PgPrograms, config: &BackupConfig) -> anyhow::Result<()> {
    let backups = base_backups(&config.folder)?;
    let drop = backups.len().saturating_sub(config.keep.max(1));
    for old in &backups[..drop] {
        std::fs::remove_dir_all(&old.path)
            .with_context(|| format!("removing the old base backup {}", old.path.display()))?;
        tracing::info!(base_backup = old.name(), "removed an old base backup");
    }
    if let Some(oldest) = backups.get(drop) {
        let segment = oldest.first_segment()?;
        let wal = wal_folder(&config.folder);
        let out = programs
            .run("pg_archivecleanup", &[path_str(&wal), &segment])
            .await?;
        ensure!(
            out.status.success(),
            "pg_archivecleanup failed: {}",
            describe(&out)
        );
    }
    Ok(())
}

/// How long after a failed base backup the next is tried.
const RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// Takes a base backup whenever the newest one is `config.every` old (at once when there is none), for as
/// long as the server runs; a failure is logged at error, shown to managers and tried again later.
pub async fn keep_base_backups(
    cluster: EmbeddedPostgres,
    config: BackupConfig,
    report: BackupReport,
) {
    loop {
        let newest = base_backups(&config.folder)
            .ok()
            .and_then(|backups| backups.last().map(|b| b.finished));
        let due = newest.map_or(Duration::ZERO, |finished| {
            (finished + config.every - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
        });
        tokio::time::sleep(due).await;
        match take_base_backup(&cluster, &config).await {
            Ok(backup) => {
                tracing::info!(base_backup = backup.name(), "took a base backup");
                report.update(|health| health.last_base_backup = Some(event_of(&backup)));
            }
            Err(err) => {
                let detail = format!("{err:#}");
                tracing::error!(error = detail, "the base backup failed");
                report.update(|health| {
                    health.last_base_backup_failure = Some(BackupEvent {
                        at: Utc::now(),
                        detail,
                    })
                });
                tokio::time::sleep(RETRY_AFTER.min(config.every)).await;
            }
        }
    }
}

fn event_of(backup: &BaseBackup) -> BackupEvent {
    BackupEvent {
        at: backup.finished,
        detail: backup.name(),
    }
}

/// The report of a server keeping backups in `folder`, with the newest base backup already there.
pub fn report_for(folder: &Path) -> BackupReport {
    let report = BackupReport::configured();
    if let Some(newest) = base_backups(folder).ok().and_then(|b| b.last().cloned()) {
        report.update(|health| health.last_base_backup = Some(event_of(&newest)));
    }
    report
}

/// How often the archiver's state is read.
const ARCHIVE_WATCH: Duration = Duration::from_secs(5);

/// The archiver's own account of itself (`pg_stat_archiver`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ArchiverStatus {
    pub last_archived_wal: Option<String>,
    pub last_archived_time: Option<DateTime<Utc>>,
    pub last_failed_wal: Option<String>,
    pub last_failed_time: Option<DateTime<Utc>>,
    pub failed_count: i64,
}

impl ArchiverStatus {
    pub async fn read(pool: &PgPool) -> sqlx::Result<Self> {
        sqlx::query_as(
            "select last_archived_wal, last_archived_time, last_failed_wal, last_failed_time, failed_count
               from pg_catalog.pg_stat_archiver",
        )
        .fetch_one(pool)
        .await
    }

    fn failing(&self) -> bool {
        self.last_failed_time > self.last_archived_time
    }
}

/// Reads the archiver's state every few seconds into the report, and logs at error each time archiving has
/// failed since the last look: PostgreSQL keeps a segment it could not archive and retries, but until it
/// succeeds, the changes in it would be lost with the disk.
pub async fn watch_archive(pool: PgPool, report: BackupReport, pgdata: PathBuf) {
    let log = pgdata.join("server.log");
    let mut every = tokio::time::interval(ARCHIVE_WATCH);
    let mut seen: Option<ArchiverStatus> = None;
    loop {
        every.tick().await;
        let status = match ArchiverStatus::read(&pool).await {
            Ok(status) => status,
            Err(err) => {
                tracing::warn!(error = %err, "reading the WAL archiver's state failed");
                continue;
            }
        };
        let failed_again = match &seen {
            Some(seen) => status.failed_count > seen.failed_count,
            None => status.failing(),
        };
        if failed_again {
            tracing::error!(
                segment = status.last_failed_wal.as_deref().unwrap_or_default(),
                failures = status.failed_count,
                "archiving a WAL segment to the backup folder failed; PostgreSQL keeps it and tries again, and \
                 its log says why: {}",
                log.display()
            );
        } else if seen.as_ref().is_some_and(ArchiverStatus::failing) && !status.failing() {
            tracing::info!(
                segment = status.last_archived_wal.as_deref().unwrap_or_default(),
                "archiving WAL to the backup folder works again"
            );
        }
        report.update(|health| {
            health.last_archived = event(&status.last_archived_time, &status.last_archived_wal);
            health.last_archive_failure = event(&status.last_failed_time, &status.last_failed_wal);
        });
        seen = Some(status);
    }
}

fn event(at: &Option<DateTime<Utc>>, segment: &Option<String>) -> Option<BackupEvent> {
    at.map(|at| BackupEvent {
        at,
        detail: segment.clone().unwrap_or_default(),
    })
}
