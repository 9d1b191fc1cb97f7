//! Where the CPU goes: processor time used by the server process, by the PostgreSQL cluster (the postmaster
//! and every backend), and by the load client, read from /proc before and after a run.

use std::path::PathBuf;

/// Linux's USER_HZ: /proc counts processor time in hundredths of a second.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    server: u64,
    postgres: u64,
    client: u64,
}

/// Processor time per request, in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct PerRequest {
    pub server: f64,
    pub postgres: f64,
    pub client: f64,
}

/// utime, stime, cutime, cstime of a process (the last two: its children that have ended and been waited for).
fn times(pid: u32) -> Option<(u32, [u64; 4])> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let number = |i: usize| fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
    Some((ppid, [number(11), number(12), number(13), number(14)]))
}

pub struct Meter {
    server_pid: u32,
    /// Every cluster the requests reach: one, or each node of a Citus cluster.
    postmaster_pids: Vec<u32>,
}

impl Meter {
    pub fn new(server_pid: u32, pgdata: &[PathBuf]) -> Self {
        let postmaster_pids = pgdata
            .iter()
            .filter_map(|dir| {
                let pid = std::fs::read_to_string(dir.join("postmaster.pid")).ok()?;
                pid.lines().next()?.trim().parse().ok()
            })
            .collect();
        Self {
            server_pid,
            postmaster_pids,
        }
    }

    pub fn sample(&self) -> Sample {
        let own = |pid: u32| times(pid).map_or(0, |(_, t)| t[0] + t[1]);
        let with_children = |pid: u32| times(pid).map_or(0, |(_, t)| t.iter().sum());
        // Backends that ended were waited for by the postmaster: their time is in its children's counters.
        let mut postgres: u64 = self
            .postmaster_pids
            .iter()
            .map(|&pid| with_children(pid))
            .sum();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for pid in entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            {
                if let Some((ppid, t)) = times(pid)
                    && self.postmaster_pids.contains(&ppid)
                {
                    postgres += t[0] + t[1];
                }
            }
        }
        Sample {
            server: own(self.server_pid),
            postgres,
            // This process and the pgbench runs it waited for.
            client: with_children(std::process::id()),
        }
    }
}

impl Sample {
    pub fn per_request(&self, before: &Sample, requests: u64) -> PerRequest {
        let micros = |after: u64, before: u64| {
            after.saturating_sub(before) as f64 / TICKS_PER_SECOND * 1e6 / requests.max(1) as f64
        };
        PerRequest {
            server: micros(self.server, before.server),
            postgres: micros(self.postgres, before.postgres),
            client: micros(self.client, before.client),
        }
    }
}
