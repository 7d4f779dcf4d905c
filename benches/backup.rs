//! Benchmark of backups (issue 6), on a generated database of at least 1 GB (kept between
//! runs as `opsguard_bench_backup_<MB>mb`; `BENCH_DROP=1` drops it afterwards):
//! - backup: `opsguard backup run` (the release binary: snapshot + row counts, pg_dump →
//!   zstd -3 on 2 threads → age → SHA-256 → local storage, checksum read back) against the
//!   compressing pipe alone, `pg_dump -Fc -Z0 | zstd -3 > file`, in the same run;
//! - peak RSS of the opsguard process (VmHWM, polled), for two database sizes;
//! - restore test: `opsguard backup verify` (checksum, decrypt, decompress, pg_restore into
//!   a scratch database, row counts, drop) against `zstd -d | pg_restore` into a fresh
//!   database alone.
//!
//! `cargo bench --bench backup` (`BENCH_BACKUP_MB=1100`, `BENCH_ROUNDS=3`; `BENCH_QUICK=1`
//! for 100 MB and one round). Needs PostgreSQL on 127.0.0.1, pg_dump, pg_restore and zstd.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PG: &str = "postgres://root@127.0.0.1:5432";
const MASTER_KEY: &str = "b3BzZ3VhcmQtYmVuY2gtbWFzdGVyLWtleS0zMmJ5dGU=";

fn psql(db: &str, sql: &str) -> anyhow::Result<String> {
    let out = Command::new("psql")
        .args([
            &format!("{PG}/{db}"),
            "-qAtX",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The source database, generated once to at least `mb` MiB.
fn source(mb: u64) -> anyhow::Result<String> {
    let name = format!("opsguard_bench_backup_{mb}mb");
    let exists = psql(
        "postgres",
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    )?;
    if exists != "1" {
        psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
    }
    psql(&name, "CREATE TABLE IF NOT EXISTS events (id bigint PRIMARY KEY, account text, ip inet, at timestamptz, payload text);
                 CREATE TABLE IF NOT EXISTS accounts (id int PRIMARY KEY, name text, created timestamptz)")?;
    psql(
        &name,
        "INSERT INTO accounts SELECT g, 'user' || g, now() - g * interval '1 hour' FROM generate_series(1, 50000) g ON CONFLICT DO NOTHING",
    )?;
    // Resumable: an interrupted generation goes on from the highest id.
    let mut next: u64 = psql(&name, "SELECT coalesce(max(id), 0) + 1 FROM events")?.parse()?;
    if next > 1 {
        let size: u64 = psql(&name, "SELECT pg_database_size(current_database())")?.parse()?;
        if size >= mb * 1024 * 1024 {
            return Ok(name);
        }
    }
    eprintln!("generating {name} up to {mb} MiB (once; kept for later runs)…");
    loop {
        let size: u64 = psql(&name, "SELECT pg_database_size(current_database())")?.parse()?;
        if size >= mb * 1024 * 1024 {
            break;
        }
        let to = next + 1_000_000;
        psql(&name, &format!(
            "INSERT INTO events SELECT g, 'user' || (g % 50000), ('10.' || (g % 250) || '.' || (g / 250 % 250) || '.' || (g % 7))::inet,
                    now() - g * interval '1 second', md5(g::text) || ' ' || repeat(chr(97 + (g % 26)::int), 20) || ' ' || (g * 7919 % 100003)
             FROM generate_series({next}::bigint, {}::bigint) g", to - 1))?;
        next = to;
    }
    psql(&name, "VACUUM ANALYZE")?;
    Ok(name)
}

/// Run a command to its end; returns (wall time, peak RSS in KiB of the process itself).
fn timed(cmd: &mut Command) -> anyhow::Result<(Duration, u64)> {
    let started = Instant::now();
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Ok(text) = std::fs::read_to_string(&status_path)
            && let Some(kb) = text
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        {
            peak = peak.max(kb);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    if !status.success() {
        let mut err = String::new();
        use std::io::Read;
        child.stderr.take().unwrap().read_to_string(&mut err)?;
        anyhow::bail!("{cmd:?} failed: {err}");
    }
    Ok((elapsed, peak))
}

/// The release binary on the run's catalogue, storing beside `config` (in `store/`).
fn opsguard(config: &Path, catalogue: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_opsguard"));
    cmd.env("OPSGUARD_CONFIG", config)
        .env("OPSGUARD__BACKUPS__STORAGE", config.with_file_name("store"))
        .env("DATABASE_URL", format!("{PG}/{catalogue}"))
        .env("OPSGUARD_MASTER_KEY", MASTER_KEY);
    cmd
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

struct Round {
    base_backup: f64,
    ours_backup: f64,
    ours_rss_kib: u64,
    base_restore: f64,
    ours_restore: f64,
    verify_rss_kib: u64,
}

fn round(work: &Path, config: &Path, catalogue: &str, src: &str) -> anyhow::Result<Round> {
    let base_file = work.join("baseline.dump.zst");
    let pipe = format!(
        "set -o pipefail; pg_dump --format=custom --compress=0 --dbname='{PG}/{src}' | zstd -3 -q -f -o '{}'",
        base_file.display()
    );
    let (base_backup, _) = timed(Command::new("bash").args(["-c", &pipe]))?;
    let (ours_backup, ours_rss_kib) =
        timed(opsguard(config, catalogue).args(["backup", "run", "bench"]))?;
    let id = psql(
        catalogue,
        "SELECT max(id) FROM backups WHERE status = 'good'",
    )?;
    let scratch = "opsguard_bench_restore_baseline";
    let restore = format!(
        "set -o pipefail; createdb -h 127.0.0.1 {scratch} && zstd -dc '{}' | pg_restore --no-owner --dbname='{PG}/{scratch}' && dropdb -h 127.0.0.1 {scratch}",
        base_file.display()
    );
    let _ = psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"),
    );
    let (base_restore, _) = timed(Command::new("bash").args(["-c", &restore]))?;
    let (ours_restore, verify_rss_kib) =
        timed(opsguard(config, catalogue).args(["backup", "verify", &id]))?;
    // Keep the disk free for the next round.
    let _ = std::fs::remove_file(&base_file);
    let _ = std::fs::remove_dir_all(work.join("store"));
    Ok(Round {
        base_backup: base_backup.as_secs_f64(),
        ours_backup: ours_backup.as_secs_f64(),
        ours_rss_kib,
        base_restore: base_restore.as_secs_f64(),
        ours_restore: ours_restore.as_secs_f64(),
        verify_rss_kib,
    })
}

fn measure(mb: u64, rounds: usize) -> anyhow::Result<()> {
    let src = source(mb)?;
    let size: f64 = psql(&src, "SELECT pg_database_size(current_database())")?.parse()?;
    let catalogue = format!("opsguard_bench_{}", uuid::Uuid::new_v4().simple());
    psql("postgres", &format!("CREATE DATABASE \"{catalogue}\""))?;
    let work: PathBuf = std::env::temp_dir().join(&catalogue);
    std::fs::create_dir_all(&work)?;
    let config = work.join("opsguard.toml");
    let defaults =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"))?;
    std::fs::write(
        &config,
        format!("{defaults}\n[[backups.targets]]\nname = \"bench\"\ndsn = \"{PG}/{src}\"\n"),
    )?;
    let result = (|| -> anyhow::Result<Vec<Round>> {
        Command::new(env!("CARGO_BIN_EXE_opsguard"))
            .arg("--version")
            .output()?;
        let status = opsguard(&config, &catalogue).arg("migrate").output()?;
        anyhow::ensure!(
            status.status.success(),
            "migrate: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        (0..rounds)
            .map(|_| round(&work, &config, &catalogue, &src))
            .collect()
    })();
    let _ = std::fs::remove_dir_all(&work);
    psql(
        "postgres",
        &format!("DROP DATABASE \"{catalogue}\" WITH (FORCE)"),
    )?;
    if std::env::var("BENCH_DROP").is_ok() {
        psql("postgres", &format!("DROP DATABASE \"{src}\" WITH (FORCE)"))?;
    }
    let rounds = result?;
    let m = |f: fn(&Round) -> f64| median(rounds.iter().map(f).collect());
    let (bb, ob, br, or) = (
        m(|r| r.base_backup),
        m(|r| r.ours_backup),
        m(|r| r.base_restore),
        m(|r| r.ours_restore),
    );
    let rss = rounds.iter().map(|r| r.ours_rss_kib).max().unwrap_or(0);
    let vrss = rounds.iter().map(|r| r.verify_rss_kib).max().unwrap_or(0);
    println!(
        "database {src}: {:.0} MiB, {} round(s), medians:",
        size / 1048576.0,
        rounds.len()
    );
    println!(
        "  backup : pg_dump -Fc -Z0 | zstd -3 > file {bb:7.2} s | opsguard backup run {ob:7.2} s | ratio {:.2} (target ≤ 1.15)",
        ob / bb
    );
    println!(
        "  restore: zstd -d | pg_restore (+createdb/dropdb) {br:7.2} s | opsguard backup verify {or:7.2} s | ratio {:.2} (target ≤ 1.2)",
        or / br
    );
    println!(
        "  peak RSS: backup {:.1} MiB, restore test {:.1} MiB (target ≤ 64 MiB)",
        rss as f64 / 1024.0,
        vrss as f64 / 1024.0
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let quick = std::env::var("BENCH_QUICK").is_ok();
    let env_num = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let mb = env_num("BENCH_BACKUP_MB", if quick { 100 } else { 1100 });
    let rounds = env_num("BENCH_ROUNDS", if quick { 1 } else { 3 }) as usize;
    // A small database beside the big one: peak memory must not grow with size.
    measure(100.min(mb), 1)?;
    if mb > 100 {
        measure(mb, rounds)?;
    }
    Ok(())
}
