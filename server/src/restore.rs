//! Rebuilding the embedded cluster's data folder from a backup folder: a copy of the newest base backup (the
//! newest finished before the target time, when one is given), then PostgreSQL's own recovery replays every
//! archived WAL segment since, to the end of the archive or to the target time, and opens the database.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection};

use crate::backup::{BaseBackup, WalArchive, base_backups, conf_string, wal_folder};
use crate::embedded::{
    EmbeddedPostgres, IfRunning, PgPrograms, create_dir, describe, include_settings, path_str,
};

/// The file in the data folder with the recovery settings while a restore runs; emptied when it is done.
const RECOVERY_SETTINGS: &str = "loyalty-recovery.conf";

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// The base backup's folder name.
    pub base_backup: String,
    /// The commit time of the last transaction replayed, if any was.
    pub replayed_to: Option<DateTime<Utc>>,
    /// Where the data folder that was there before now is.
    pub set_aside: Option<PathBuf>,
}

/// Restores the cluster under `data_dir` from the backup folder `from`, to the end of its archive or to
/// `to_time`. The cluster must not be running; a data folder already there is moved aside, not deleted. The
/// restored cluster archives its new WAL into `archive` (the folder it was restored from, by default: the
/// segments of the restored history go on a new timeline, under other names).
pub async fn restore(
    data_dir: &Path,
    port: u16,
    from: &Path,
    to_time: Option<DateTime<Utc>>,
    archive: &WalArchive,
) -> anyhow::Result<Restored> {
    let programs = PgPrograms::find()?;
    let base = choose_base_backup(from, to_time)?;
    create_dir(data_dir, 0o755)?;
    let root = std::fs::canonicalize(data_dir)
        .with_context(|| format!("reading {}", data_dir.display()))?;
    let pgdata = root.join("pgdata");
    if pgdata.join("postmaster.pid").exists() {
        let status = programs
            .run("pg_ctl", &["-D", path_str(&pgdata), "status"])
            .await?;
        ensure!(
            !status.status.success(),
            "the database in {} is running: stop the server first",
            pgdata.display()
        );
    }
    let set_aside = set_aside(&root, &pgdata)?;

    create_dir(&pgdata, 0o700)?;
    programs.give_to_cluster_user(&pgdata).await?;
    let source = format!("{}/.", base.data().display());
    let copied = programs
        .run_system("cp", &["-a", "--", &source, path_str(&pgdata)])
        .await?;
    ensure!(
        copied.status.success(),
        "copying the base backup {} failed: {}",
        base.name(),
        describe(&copied)
    );
    let password = root.join("superuser.password");
    std::fs::copy(base.superuser_password(), &password)
        .with_context(|| format!("copying the superuser password of {}", base.name()))?;

    let restoring = WalArchive {
        folder: wal_folder(from),
        timeout: archive.timeout,
    };
    let mut settings = format!(
        "# Written by `server restore` for the restore in progress.\n{}recovery_target_action = 'promote'\n",
        restoring.restore_command()
    );
    if let Some(to_time) = to_time {
        let target = to_time.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string();
        settings.push_str(&format!(
            "recovery_target_time = {}\n",
            conf_string(&target)
        ));
    }
    include_settings(&programs, &pgdata, RECOVERY_SETTINGS, &settings).await?;
    let signal = pgdata.join("recovery.signal");
    std::fs::write(&signal, "").context("writing recovery.signal")?;
    programs.give_to_cluster_user(&signal).await?;

    let cluster = EmbeddedPostgres::open(&root, port, IfRunning::Restart, Some(archive))
        .await
        .context("starting the restored database")?;
    let replayed = wait_for_recovery(&cluster).await;
    include_settings(
        &programs,
        &pgdata,
        RECOVERY_SETTINGS,
        "# No restore in progress.\n",
    )
    .await?;
    if cluster.is_running().await? {
        cluster.stop().await?;
    }
    Ok(Restored {
        base_backup: base.name(),
        replayed_to: replayed?,
        set_aside,
    })
}

/// The newest finished base backup in `from`, finished before `to_time` if one is given.
fn choose_base_backup(from: &Path, to_time: Option<DateTime<Utc>>) -> anyhow::Result<BaseBackup> {
    let backups = base_backups(from)?;
    let Some(oldest) = backups.first() else {
        bail!("{} holds no finished base backup", from.display());
    };
    let chosen = backups
        .iter()
        .rev()
        .find(|backup| to_time.is_none_or(|to_time| backup.finished <= to_time));
    match chosen {
        Some(backup) => Ok(backup.clone()),
        None => bail!(
            "no base backup in {} finished before the time asked for; the oldest finished at {}",
            from.display(),
            oldest.finished.to_rfc3339()
        ),
    }
}

/// Moves a data folder already there (and its password) aside, under a name with the time.
fn set_aside(root: &Path, pgdata: &Path) -> anyhow::Result<Option<PathBuf>> {
    if !pgdata.exists() {
        return Ok(None);
    }
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    let aside = root.join(format!("pgdata.before-restore-{stamp}"));
    std::fs::rename(pgdata, &aside)
        .with_context(|| format!("moving {} aside", pgdata.display()))?;
    let password = root.join("superuser.password");
    if password.exists() {
        std::fs::rename(&password, aside.join("superuser.password.before-restore"))
            .context("moving the old superuser password aside")?;
    }
    Ok(Some(aside))
}

/// How often a restore looks at the recovery's progress.
const RECOVERY_POLL: Duration = Duration::from_millis(200);

/// Waits until recovery has replayed what it was asked to and the database is open; the commit time of the
/// last transaction it replayed. Recovery that cannot finish (the target time lies past the archive, say)
/// stops the database, and that is reported with the end of its log.
async fn wait_for_recovery(cluster: &EmbeddedPostgres) -> anyhow::Result<Option<DateTime<Utc>>> {
    let url = cluster.superuser_url("postgres");
    loop {
        if !cluster.is_running().await? {
            bail!("the recovery failed: {}", cluster.log_tail(8));
        }
        if let Ok(mut conn) = PgConnection::connect(&url).await {
            let recovering: bool = sqlx::query_scalar("select pg_catalog.pg_is_in_recovery()")
                .fetch_one(&mut conn)
                .await?;
            if !recovering {
                let replayed: Option<DateTime<Utc>> =
                    sqlx::query_scalar("select pg_catalog.pg_last_xact_replay_timestamp()")
                        .fetch_one(&mut conn)
                        .await?;
                conn.close().await?;
                return Ok(replayed);
            }
        }
        tokio::time::sleep(RECOVERY_POLL).await;
    }
}
