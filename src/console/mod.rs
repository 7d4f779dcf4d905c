//! `opsguard console --as <id>`: the same pipeline from a terminal. Lines are commands;
//! inline buttons appear as numbered choices (type the number to press one).

use crate::domain::html::to_plain;
use crate::domain::{Actor, Button, Chat, UserId};
use crate::engine::{Engine, Input, Request};
use std::io::Write;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// `opsguard console`: the engine, a backup worker (queued backups and restore tests run
/// here too, so the console can try them), the REPL on stdin; before it leaves, it finishes
/// the jobs its user queued and prints how they ended.
pub async fn start(settings: crate::config::Settings, user: UserId) -> anyhow::Result<()> {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let engine = crate::startup::engine(settings, &shutdown).await?;
    let started = chrono::Utc::now();
    let tracker = tokio_util::task::TaskTracker::new();
    let backups = crate::backups::Backups::new(engine.pool().clone(), engine.settings());
    crate::backups::worker::spawn(backups.clone(), shutdown.clone(), &tracker);
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
    run(&engine, user, stdin, &mut std::io::stdout(), interactive).await?;
    shutdown.cancel();
    tracker.close();
    tracker.wait().await;
    for line in crate::backups::worker::finish_for(&backups, user.0, started).await? {
        println!("{line}");
    }
    Ok(())
}

pub async fn run(
    engine: &Engine,
    user: UserId,
    input: impl AsyncBufRead + Unpin,
    out: &mut (dyn Write + Send),
    interactive: bool,
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
        choices.clear();
        if let Some(reply) = engine.handle(request).await {
            writeln!(out, "{}", to_plain(&reply.html).trim_end())?;
            if let Some((name, bytes)) = &reply.attachment {
                writeln!(
                    out,
                    "[document {name}, {} bytes — sent as a file in Telegram]",
                    bytes.len()
                )?;
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
