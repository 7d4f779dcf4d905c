//! A program a blocking thread streams through (pg_dump, pg_restore), held where the async
//! side can kill it: when a job's stream is given up (stalled, past its deadline, handed back
//! at shutdown) the future is dropped, and the program must not stay blocked on a pipe —
//! nor keep the thread that reads or feeds it — once nobody waits for it.

use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How often a finished stream looks whether its program has exited.
const POLL: Duration = Duration::from_millis(10);

#[derive(Default)]
struct Slot {
    child: Option<Child>,
    /// Set once the async side gave up: a program held later is killed at once.
    killed: bool,
}

/// The shared holder of one program.
#[derive(Clone, Default)]
pub struct Reaper(Arc<Mutex<Slot>>);

impl Reaper {
    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hold `child` (its pipes already taken); killed at once if the stream was given up.
    pub fn hold(&self, mut child: Child) {
        let mut slot = self.slot();
        if slot.killed {
            let _ = child.kill();
        }
        slot.child = Some(child);
    }

    /// Kill the program (nothing if it has exited and been reaped).
    pub fn kill(&self) {
        let mut slot = self.slot();
        slot.killed = true;
        if let Some(child) = slot.child.as_mut() {
            let _ = child.kill();
        }
    }

    /// Whether the async side gave up the stream: the thread stops at its next chunk.
    pub fn given_up(&self) -> bool {
        self.slot().killed
    }

    /// Wait for the program to exit, never holding the lock while it runs, so `kill` is
    /// always heard.
    pub fn wait(&self) -> std::io::Result<ExitStatus> {
        loop {
            {
                let mut slot = self.slot();
                let Some(child) = slot.child.as_mut() else {
                    return Err(std::io::Error::other("no program was started"));
                };
                if let Some(status) = child.try_wait()? {
                    return Ok(status);
                }
            }
            std::thread::sleep(POLL);
        }
    }

    /// A guard that kills the program when the future holding it is dropped.
    pub fn guard(&self) -> KillOnDrop {
        KillOnDrop(self.clone())
    }
}

/// Kills the program it guards when dropped (harmless once the program has exited).
pub struct KillOnDrop(Reaper);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn a_dropped_guard_kills_a_program_blocked_on_its_pipe() {
        let reaper = Reaper::default();
        let mut child = Command::new("sleep")
            .arg("30")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        reaper.hold(child);
        let waiting = reaper.clone();
        let waiter = std::thread::spawn(move || waiting.wait());
        drop(reaper.guard());
        let status = waiter.join().unwrap().unwrap();
        assert!(!status.success());
        drop(stdout);
    }

    #[test]
    fn a_program_held_after_the_stream_was_given_up_is_killed_at_once() {
        let reaper = Reaper::default();
        reaper.kill();
        reaper.hold(Command::new("sleep").arg("30").spawn().unwrap());
        assert!(!reaper.wait().unwrap().success());
    }
}
