//! The same database functions called directly by pgbench, as the server's role, on the same database.
//! Throughput is pgbench's own tps; p50/p99 come from its per-transaction log (`-l`: one line per
//! transaction, the fourth field its latency in microseconds), read into the same kind of histogram as the
//! HTTP runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::Command;

use crate::http::Load;
use crate::report::Measured;
use crate::seed::{Case, PostcardSlice, SALE_AMOUNT, Setup};
use crate::server::path_str;

pub struct Pgbench {
    program: PathBuf,
    scripts: PathBuf,
    logs: PathBuf,
}

impl Pgbench {
    /// pgbench from PG_BIN_DIR or the newest /usr/lib/postgresql/<version>/bin.
    pub fn find(scripts: &Path, work_dir: &Path) -> anyhow::Result<Self> {
        let dir = match std::env::var_os("PG_BIN_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => {
                let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
                    .context("PostgreSQL is not installed under /usr/lib/postgresql")?
                    .filter_map(|e| e.ok())
                    .filter_map(|e| {
                        Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin")))
                    })
                    .filter(|(_, bin)| bin.join("pgbench").is_file())
                    .collect();
                versions.sort();
                versions
                    .pop()
                    .context("no pgbench found; set PG_BIN_DIR")?
                    .1
            }
        };
        Ok(Self {
            program: dir.join("pgbench"),
            scripts: std::fs::canonicalize(scripts)
                .with_context(|| format!("pgbench's scripts in {}", scripts.display()))?,
            logs: work_dir.join("pgbench"),
        })
    }

    pub async fn run(
        &self,
        database_url: &str,
        setup: &Setup,
        load: &Load,
        postcards: Option<&PostcardSlice>,
    ) -> anyhow::Result<Measured> {
        self.run_script(database_url, load.case.endpoint(), setup, load, postcards)
            .await
    }

    /// The same load through the design's original functions (`original_<endpoint>.sql`).
    pub async fn run_original(
        &self,
        original: &crate::original::Original,
        setup: &Setup,
        load: &Load,
        postcards: Option<&PostcardSlice>,
    ) -> anyhow::Result<Measured> {
        let script = format!("original_{}", load.case.endpoint());
        self.run_script(&original.url, &script, setup, load, postcards)
            .await
    }

    async fn run_script(
        &self,
        database_url: &str,
        script: &str,
        setup: &Setup,
        load: &Load,
        postcards: Option<&PostcardSlice>,
    ) -> anyhow::Result<Measured> {
        let logs = self
            .logs
            .join(format!("{script}-{}-{}", load.case.name(), load.clients));
        // Each round reads its own transactions only.
        if logs.exists() {
            std::fs::remove_dir_all(&logs)?;
        }
        std::fs::create_dir_all(&logs)?;
        let (first, last) = load.case.member_range(load.members);
        let mut defines = vec![
            format!("program_id={}", setup.program_id),
            format!("first_member={first}"),
            format!("last_member={last}"),
        ];
        match (load.case, postcards) {
            (Case::Claim, Some(slice)) => {
                defines.push(format!("base={}", slice.base));
                defines.push(format!("stride={}", slice.len / load.clients as i64));
                defines.push("i=0".into());
            }
            (Case::SaleMany, _) => defines.push(format!("amount={SALE_AMOUNT}")),
            (Case::RewardMany, _) => defines.push(format!("reward_id={}", setup.reward_ids[0])),
            _ => {}
        }
        let mut command = Command::new(&self.program);
        command
            .args(["-n", "-M", "prepared"])
            .args(["-c", &load.clients.to_string()])
            .args(["-j", &load.clients.min(2).to_string()])
            .args(["-T", &load.duration.as_secs().to_string()])
            .arg("-f")
            .arg(self.scripts.join(format!("{script}.sql")))
            .arg("-l")
            .arg(format!("--log-prefix={}", path_str(&logs.join("tx"))));
        for define in &defines {
            command.args(["-D", define]);
        }
        let output = command.arg(database_url).output().await?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "pgbench failed: {}\n{stdout}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let field = |prefix: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(prefix))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        let processed = field("number of transactions actually processed: ")
            .context("pgbench printed no transaction count")?;
        let tps = field("tps = ").context("pgbench printed no tps")?;

        let mut measured = Measured::new();
        for entry in std::fs::read_dir(&logs)? {
            let text = std::fs::read_to_string(entry?.path())?;
            for line in text.lines() {
                if let Some(micros) = line
                    .split_whitespace()
                    .nth(2)
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    let _ = measured.hist.record(micros.max(1));
                }
            }
        }
        measured.ok = processed as u64;
        measured.errors = field("number of failed transactions: ").unwrap_or(0.0) as u64;
        measured.elapsed = Duration::from_secs_f64(processed / tps.max(1e-9));
        if measured.hist.len() != measured.ok {
            measured.note(&format!(
                "the log holds {} transactions, pgbench counted {}",
                measured.hist.len(),
                measured.ok
            ));
        }
        Ok(measured)
    }
}
