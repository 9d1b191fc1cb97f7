//! A private PostgreSQL cluster started from the installed PostgreSQL programs, so the server runs with no
//! set-up. The data folder is kept between runs; the cluster listens on 127.0.0.1 only, with a superuser
//! password kept beside the data (mode 600). Run as root, the cluster runs as the `postgres` system user,
//! since PostgreSQL refuses to run as root.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use tokio::process::Command;

use crate::backup::WalArchive;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "PostgreSQL's server programs (initdb, pg_ctl) were not found. Install them (apt-get install postgresql), \
         set PG_BIN_DIR to their folder, or set DATABASE_URL to use a running server."
    )]
    NotInstalled,
    #[error("running as root, but there is no `postgres` system user to run the database as: {0}")]
    NoPostgresUser(String),
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, EmbeddedError>;

/// The system user a root process runs the cluster as.
const SERVICE_USER: &str = "postgres";

/// A running private cluster. Call [`EmbeddedPostgres::stop`] to shut it down; it outlives a killed process and
/// is then stopped and restarted by the next [`EmbeddedPostgres::start`].
#[derive(Debug, Clone)]
pub struct EmbeddedPostgres {
    root: PathBuf,
    programs: PgPrograms,
    pgdata: PathBuf,
    port: u16,
    password: String,
    /// False when this handle found the cluster already running and shares it.
    started_here: bool,
}

/// What to do with a cluster that is already running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfRunning {
    /// Stop it and start it again with this call's settings (it was left running by a killed server).
    Restart,
    /// Use it as it is, and leave it running.
    Share,
}

/// The file in the data folder with the WAL archive's settings, written at each start; postgresql.conf
/// includes it.
const ARCHIVE_SETTINGS: &str = "loyalty-archive.conf";

impl EmbeddedPostgres {
    /// Creates the cluster under `root` on first use, then starts it on 127.0.0.1:`port`. A cluster left
    /// running there (by a killed server) is restarted, so it runs with this call's settings.
    pub async fn start(root: &Path, port: u16) -> Result<Self> {
        Self::open(root, port, IfRunning::Restart, None).await
    }

    /// Like [`EmbeddedPostgres::start`], but a cluster already running there is used as it is: for test
    /// processes that share one cluster.
    pub async fn attach_or_start(root: &Path, port: u16) -> Result<Self> {
        Self::open(root, port, IfRunning::Share, None).await
    }

    /// Creates the cluster under `root` on first use and starts it, archiving its WAL to `archive` if given; a
    /// running one is restarted or shared as `if_running` says.
    pub async fn open(
        root: &Path,
        port: u16,
        if_running: IfRunning,
        archive: Option<&WalArchive>,
    ) -> Result<Self> {
        let programs = PgPrograms::find()?;
        create_dir(root, 0o755)?;
        let root = std::fs::canonicalize(root).map_err(io(root))?;
        let pgdata = root.join("pgdata");
        let password_file = root.join("superuser.password");

        let cluster = Self {
            root: root.clone(),
            programs,
            pgdata,
            port,
            password: String::new(),
            started_here: true,
        };
        if !cluster.pgdata.join("PG_VERSION").exists() {
            cluster.init(&root, &password_file).await?;
        }
        let password = std::fs::read_to_string(&password_file).map_err(io(&password_file))?;
        let cluster = Self {
            password: password.trim().to_owned(),
            ..cluster
        };

        if cluster.is_running().await? {
            if if_running == IfRunning::Share {
                // A running cluster listens where it was started, whatever this call asked for.
                let pid_file = cluster.pgdata.join("postmaster.pid");
                let running_port = std::fs::read_to_string(&pid_file)
                    .ok()
                    .and_then(|pid| pid.lines().nth(3).and_then(|line| line.trim().parse().ok()))
                    .unwrap_or(port);
                return Ok(Self {
                    started_here: false,
                    port: running_port,
                    ..cluster
                });
            }
            cluster.stop().await?;
        }
        let settings = archive.map_or_else(
            || "# No backup folder: the WAL is not archived.\n".to_owned(),
            WalArchive::settings,
        );
        include_settings(
            &cluster.programs,
            &cluster.pgdata,
            ARCHIVE_SETTINGS,
            &settings,
        )
        .await?;
        let log = cluster.pgdata.join("server.log");
        let options = format!("-p {port}");
        let started = cluster
            .pg_ctl(&[
                "start",
                "-w",
                "-t",
                "60",
                "-l",
                path_str(&log),
                "-o",
                &options,
            ])
            .await?;
        if !started.status.success() {
            return Err(EmbeddedError::Command {
                what: format!("starting PostgreSQL on port {port}"),
                detail: format!("{} {}", describe(&started), log_tail(&log, 5)),
            });
        }
        Ok(cluster)
    }

    async fn init(&self, root: &Path, password_file: &Path) -> Result<()> {
        let password = uuid::Uuid::new_v4().simple().to_string();
        create_dir(&self.pgdata, 0o700)?;
        // initdb reads the password from a file the cluster's user can read; it is removed right after.
        let scratch = root.join(format!(".initdb-{}", uuid::Uuid::new_v4().simple()));
        create_dir(&scratch, 0o700)?;
        let pwfile = scratch.join("pw");
        std::fs::write(&pwfile, &password).map_err(io(&pwfile))?;
        for path in [&self.pgdata, &scratch, &pwfile] {
            self.programs.give_to_cluster_user(path).await?;
        }
        let pwfile_arg = format!("--pwfile={}", path_str(&pwfile));
        let out = self
            .programs
            .run(
                "initdb",
                &[
                    "-D",
                    path_str(&self.pgdata),
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--auth-local=peer",
                    "--auth-host=scram-sha-256",
                    &pwfile_arg,
                ],
            )
            .await;
        let _ = std::fs::remove_dir_all(&scratch);
        let out = out?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&self.pgdata);
            return Err(EmbeddedError::Command {
                what: "initdb".into(),
                detail: describe(&out),
            });
        }
        let conf = self.pgdata.join("postgresql.conf");
        let mut settings = std::fs::read_to_string(&conf).map_err(io(&conf))?;
        // TCP on loopback only: no socket folder to own, no path-length limit, nothing reachable from outside.
        settings.push_str("\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n");
        std::fs::write(&conf, settings).map_err(io(&conf))?;
        write_secret(password_file, &password)
    }

    /// A URL for `database` as the cluster's superuser.
    pub fn superuser_url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's password, for PostgreSQL's own programs (pg_basebackup).
    pub fn superuser_password(&self) -> &str {
        &self.password
    }

    /// The folder holding the cluster's password files and its data folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The data folder.
    pub fn pgdata(&self) -> &Path {
        &self.pgdata
    }

    pub fn programs(&self) -> &PgPrograms {
        &self.programs
    }

    /// Whether a postmaster runs on the data folder.
    pub async fn is_running(&self) -> Result<bool> {
        Ok(self.pg_ctl(&["status"]).await?.status.success())
    }

    /// The last lines of the cluster's own log, for an error message.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.pgdata.join("server.log"), lines)
    }

    /// The password of the server's own role, made on first use and kept beside the data (mode 600), so every
    /// process using this cluster agrees on it.
    pub fn app_password(&self) -> Result<String> {
        let file = self.root.join("app.password");
        if !file.exists() {
            write_secret(&file, &uuid::Uuid::new_v4().simple().to_string())?;
        }
        Ok(std::fs::read_to_string(&file)
            .map_err(io(&file))?
            .trim()
            .to_owned())
    }

    /// False when the cluster was already running when this handle attached to it.
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    /// Stops the cluster, letting running transactions roll back.
    pub async fn stop(&self) -> Result<()> {
        let out = self
            .pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"])
            .await?;
        if out.status.success() {
            Ok(())
        } else {
            Err(EmbeddedError::Command {
                what: "stopping PostgreSQL".into(),
                detail: describe(&out),
            })
        }
    }

    async fn pg_ctl(&self, args: &[&str]) -> Result<Output> {
        let mut all = vec!["-D", path_str(&self.pgdata)];
        all.extend_from_slice(args);
        self.programs.run("pg_ctl", &all).await
    }
}

/// The installed PostgreSQL programs, run as the user the cluster runs as: the `postgres` system user when
/// this process is root, since PostgreSQL refuses to run as root.
#[derive(Debug, Clone)]
pub struct PgPrograms {
    bin_dir: PathBuf,
    run_as_service_user: bool,
}

impl PgPrograms {
    pub fn find() -> Result<Self> {
        let bin_dir = find_bin_dir().ok_or(EmbeddedError::NotInstalled)?;
        let run_as_service_user = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        Ok(Self {
            bin_dir,
            run_as_service_user,
        })
    }

    /// Runs one of PostgreSQL's programs (`initdb`, `pg_ctl`, `pg_basebackup`, ...).
    pub async fn run(&self, program: &str, args: &[&str]) -> Result<Output> {
        self.run_with_env(program, args, &[]).await
    }

    /// [`PgPrograms::run`] with environment variables (a password for a client program, say).
    pub async fn run_with_env(
        &self,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Output> {
        self.command(&self.bin_dir.join(program), args, env).await
    }

    /// Runs a system command (`cp`, `test`) as the cluster's user.
    pub async fn run_system(&self, command: &str, args: &[&str]) -> Result<Output> {
        self.command(Path::new(command), args, &[]).await
    }

    async fn command(&self, program: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Output> {
        let mut cmd = if self.run_as_service_user {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", SERVICE_USER, "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        cmd.args(args)
            .envs(env.iter().copied())
            .current_dir("/")
            .env("LC_ALL", "C.UTF-8")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(false)
            .output()
            .await
            .map_err(|e| EmbeddedError::Command {
                what: program.display().to_string(),
                detail: e.to_string(),
            })
    }

    /// Makes `path` the cluster's user's, when that is not this process's user.
    pub async fn give_to_cluster_user(&self, path: &Path) -> Result<()> {
        if self.run_as_service_user {
            let (uid, gid) = service_user_ids().await?;
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(io(path))?;
        }
        Ok(())
    }
}

/// Writes `text` to the file `name` in the data folder, owned by the cluster's user, and has postgresql.conf
/// include it (once), so the settings in it apply from the cluster's next start.
pub async fn include_settings(
    programs: &PgPrograms,
    pgdata: &Path,
    name: &str,
    text: &str,
) -> Result<()> {
    let path = pgdata.join(name);
    std::fs::write(&path, text).map_err(io(&path))?;
    programs.give_to_cluster_user(&path).await?;
    let conf = pgdata.join("postgresql.conf");
    let settings = std::fs::read_to_string(&conf).map_err(io(&conf))?;
    let include = format!("include_if_exists = '{name}'");
    if !settings.lines().any(|line| line.trim() == include) {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .map_err(io(&conf))?;
        std::io::Write::write_all(&mut file, format!("\n{include}\n").as_bytes())
            .map_err(io(&conf))?;
    }
    Ok(())
}

/// The last `lines` lines of a log file, joined with ` | `.
pub fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(lines).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// PG_BIN_DIR, or the newest /usr/lib/postgresql/<version>/bin that has initdb and pg_ctl.
fn find_bin_dir() -> Option<PathBuf> {
    let has_programs = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        let dir = PathBuf::from(dir);
        return has_programs(&dir).then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has_programs(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

async fn service_user_ids() -> Result<(u32, u32)> {
    let id = |flag: &'static str| async move {
        let out = Command::new("id")
            .args([flag, SERVICE_USER])
            .output()
            .await
            .map_err(|e| EmbeddedError::NoPostgresUser(e.to_string()))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u32>()
            .map_err(|_| {
                EmbeddedError::NoPostgresUser(
                    String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                )
            })
    };
    Ok((id("-u").await?, id("-g").await?))
}

fn write_secret(path: &Path, secret: &str) -> Result<()> {
    std::fs::write(path, secret).map_err(io(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))
}

/// Creates a folder with `mode`; a folder that is already there is left as it is.
pub(crate) fn create_dir(path: &Path, mode: u32) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(path).map_err(io(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io(path))
}

pub(crate) fn io(path: &Path) -> impl Fn(std::io::Error) -> EmbeddedError + '_ {
    move |source| EmbeddedError::Io {
        path: path.to_owned(),
        source,
    }
}

pub(crate) fn path_str(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}

pub(crate) fn describe(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    format!("{} {}", stderr.trim(), stdout.trim())
        .trim()
        .to_owned()
}
