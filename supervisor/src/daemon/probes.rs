//! Readiness probes and health checks: tasks that watch one start of one unit and report to
//! the state-owning task as events. They own no state; a probe command is spawned by the
//! owner (through the one spawn path) and its exit comes from the one reaper.

use std::sync::Arc;
use std::time::Duration;

use kennel_core::{ExitStatus, Pid};
use kennel_units::{format_duration, Health};
use tokio::sync::{mpsc, oneshot};

use super::notify::NotifySocket;
use super::Input;
use crate::spawn::launch::LaunchError;
use crate::spawn::SpawnSpec;

/// Why a probe command did not pass; a failed health check's detail.
#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error("kennel is stopping")]
    Stopping,
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error("check exited with code {0}")]
    Exited(i32),
    #[error("check killed by {}", kennel_units::signal_name(*.0))]
    Killed(i32),
    #[error("check timed out after {}", format_duration(*.0))]
    TimedOut(Duration),
}

/// A probe process the owner started: its pid and the channel its exit arrives on.
pub struct ProbeProcess {
    pub pid: Pid,
    pub exit: oneshot::Receiver<ExitStatus>,
}

/// Ask the owner to run `spec`; wait at most `limit` for it to end.
async fn run_probe(
    tx: &mpsc::UnboundedSender<Input>,
    spec: &SpawnSpec,
    limit: Duration,
) -> Result<(), ProbeError> {
    let (reply, rx) = oneshot::channel();
    tx.send(Input::RunProbe {
        spec: Box::new(spec.clone()),
        reply,
    })
    .map_err(|_| ProbeError::Stopping)?;
    let proc = rx.await.map_err(|_| ProbeError::Stopping)??;
    match tokio::time::timeout(limit, proc.exit).await {
        Ok(Ok(ExitStatus::Code(0))) => Ok(()),
        Ok(Ok(ExitStatus::Code(c))) => Err(ProbeError::Exited(c)),
        Ok(Ok(ExitStatus::Signal(s))) => Err(ProbeError::Killed(s)),
        Ok(Err(_)) => Err(ProbeError::Stopping),
        Err(_) => {
            // SAFETY: kill(2) on the probe's own process group.
            unsafe {
                libc::kill(-proc.pid, libc::SIGKILL);
            }
            Err(ProbeError::TimedOut(limit))
        }
    }
}

/// `[ready] command`: run it until it exits 0, every 250ms.
pub async fn ready_command(
    tx: mpsc::UnboundedSender<Input>,
    unit: String,
    pid: Pid,
    spec: SpawnSpec,
) {
    loop {
        if run_probe(&tx, &spec, Duration::from_secs(10)).await.is_ok() {
            let _ = tx.send(Input::Ready { unit, pid });
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `[ready] tcp`: connect until a connection is accepted, every 100ms.
pub async fn ready_tcp(tx: mpsc::UnboundedSender<Input>, unit: String, pid: Pid, addr: String) {
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::net::TcpStream::connect(addr.as_str()),
        );
        if let Ok(Ok(_stream)) = attempt.await {
            let _ = tx.send(Input::Ready { unit, pid });
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `[ready] notify`: wait for `READY=1` on the unit's notify socket.
pub async fn ready_notify(
    tx: mpsc::UnboundedSender<Input>,
    unit: String,
    pid: Pid,
    socket: Arc<NotifySocket>,
) {
    // Until the run ends (the owner aborts this task): READY=1 once, STATUS= each time.
    let mut ready = false;
    loop {
        let lines = match socket.recv().await {
            Ok(lines) => lines,
            Err(e) => {
                tracing::warn!(unit = %unit, "notify socket {}: {e}", socket.path.display());
                return;
            }
        };
        for line in lines {
            if line == "READY=1" && !ready {
                ready = true;
                let _ = tx.send(Input::Ready {
                    unit: unit.clone(),
                    pid,
                });
            } else if let Some(text) = line.strip_prefix("STATUS=") {
                let _ = tx.send(Input::NotifyStatus {
                    unit: unit.clone(),
                    pid,
                    text: text.to_string(),
                });
            }
        }
    }
}

/// `[health]`: a check every `interval`, each reported.
pub async fn health(
    tx: mpsc::UnboundedSender<Input>,
    unit: String,
    pid: Pid,
    health: Health,
    spec: SpawnSpec,
) {
    loop {
        tokio::time::sleep(health.interval).await;
        let (ok, detail) = match run_probe(&tx, &spec, health.timeout).await {
            Ok(()) => (true, String::from("ok")),
            Err(d) => (false, d.to_string()),
        };
        if tx
            .send(Input::Health {
                unit: unit.clone(),
                pid,
                ok,
                detail,
            })
            .is_err()
        {
            return;
        }
    }
}
