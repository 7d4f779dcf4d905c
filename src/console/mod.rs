//! `opsguard console --as <id>`: the same pipeline from a terminal. Lines are commands;
//! inline buttons appear as numbered choices (type the number to press one). Backups and
//! restore tests the user queued are followed as they run (`follow`); with `--save-dir`,
//! reports that come as documents (`/check … json|sarif`) are saved there (`save`).

mod follow;
mod save;

use crate::domain::html::to_plain;
use crate::domain::{Actor, Button, Chat, UserId};
use crate::engine::{Engine, Input, Request};
use std::io::Write;
use std::path::PathBuf;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// How a console session is set up beyond its user.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Where documents (json/sarif reports) are saved; `None`: only their size is shown.
    pub save_dir: Option<PathBuf>,
}

/// `opsguard console`: the engine, a backup worker (queued backups and restore tests run
/// here too, so the console can try them), the REPL on stdin, and a follower that prints
/// the progress and results of the user's jobs as they happen; before it leaves, it
/// finishes the jobs its user queued and prints how those not yet shown ended.
pub async fn start(
    settings: crate::config::Settings,
    user: UserId,
    options: Options,
) -> anyhow::Result<()> {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let engine = crate::startup::engine(settings, &shutdown).await?;
    let started = chrono::Utc::now();
    let tracker = tokio_util::task::TaskTracker::new();
    let backups = crate::backups::Backups::new(engine.pool().clone(), engine.settings());
    crate::backups::worker::spawn(backups.clone(), shutdown.clone(), &tracker);
    let follower = crate::backups::watch::Follower::new(engine.pool().clone(), user.0, started);
    let following = follow::spawn(follower);
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
    let out = &mut std::io::stdout();
    run(&engine, user, stdin, out, interactive, &options).await?;
    shutdown.cancel();
    tracker.close();
    tracker.wait().await;
    let finished = crate::backups::worker::finish_for(&backups, user.0, started).await;
    let follower = following.stop().await;
    for (job, line) in finished? {
        if !follower.has_shown_end(job) {
            println!("{line}");
        }
    }
    Ok(())
}

pub async fn run(
    engine: &Engine,
    user: UserId,
    input: impl AsyncBufRead + Unpin,
    out: &mut (dyn Write + Send),
    interactive: bool,
    options: &Options,
) -> anyhow::Result<()> {
    if interactive {
        writeln!(
            out,
            "opsguard console as {user}: type /help, or Ctrl-D to leave."
        )?;
    }
    let mut choices: Vec<Button> = Vec::new();
    let mut lines = input.lines();
    loop {
        if interactive {
            write!(out, "> ")?;
            out.flush()?;
        }
        let Some(line) = lines.next_line().await? else {
            break;
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "quit" || line == "exit" {
            break;
        }
        let input = match line.parse::<usize>() {
            Ok(n) if (1..=choices.len()).contains(&n) => {
                Input::Callback(choices[n - 1].data.clone())
            }
            _ => Input::Text(line.to_string()),
        };
        let request = Request::new(Actor::console(user), Chat::private(user), input);
        let request_id = request.id;
        choices.clear();
        if let Some(reply) = engine.handle(request).await {
            writeln!(out, "{}", to_plain(&reply.html).trim_end())?;
            if let Some((name, bytes)) = &reply.attachment {
                let note = match &options.save_dir {
                    Some(dir) => save::document(dir, line, request_id, name, bytes),
                    None => format!(
                        "[document {name}, {} bytes — sent as a file in Telegram; --save-dir DIR saves it]",
                        bytes.len()
                    ),
                };
                writeln!(out, "{note}")?;
            }
            if let Some(png) = &reply.photo {
                writeln!(
                    out,
                    "[chart, PNG of {} bytes — sent as a photo in Telegram]",
                    png.len()
                )?;
            }
            if !reply.buttons.is_empty() {
                let menu: Vec<String> = reply
                    .buttons
                    .iter()
                    .enumerate()
                    .map(|(i, b)| format!("[{}] {}", i + 1, b.label))
                    .collect();
                writeln!(out, "{}", menu.join("   "))?;
                choices = reply.buttons;
            }
        }
        out.flush()?;
    }
    Ok(())
}
