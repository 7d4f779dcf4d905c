//! The preflight: whether the admin credentials of every target hold every privilege each
//! step of a rotation needs (set, test, retire, end sessions), asked without changing
//! anything. Run by `opsguard secret check [NAME]`, at start-up (each missing grant logged
//! as a warning; start-up goes on) and before each rotation (which it refuses up front,
//! naming the missing grant). The grants each kind needs are listed in the README.

use super::catalog::{Catalog, ManagedSecret};
use futures::future::join_all;

/// What the preflight found for one secret.
#[derive(Debug)]
pub struct Report {
    pub secret: String,
    pub kind: &'static str,
    /// `Ok`: the missing grants (empty: ready). `Err`: the target could not be asked.
    pub result: Result<Vec<String>, String>,
}

impl Report {
    pub fn is_ready(&self) -> bool {
        self.result.as_ref().is_ok_and(|m| m.is_empty())
    }

    /// One line per finding: `app-db (postgres_role): ready`, or a line per missing grant.
    pub fn lines(&self) -> Vec<String> {
        let head = format!("{} ({})", self.secret, self.kind);
        match &self.result {
            Ok(missing) if missing.is_empty() => vec![format!("{head}: ready")],
            Ok(missing) => missing
                .iter()
                .map(|m| format!("{head}: missing grant: {m}"))
                .collect(),
            Err(e) => vec![format!("{head}: could not be checked: {e}")],
        }
    }
}

/// Check one secret.
pub async fn check(secret: &ManagedSecret) -> Report {
    Report {
        secret: secret.name.to_string(),
        kind: secret.kind.kind(),
        result: secret.kind.preflight().await.map_err(|e| e.to_string()),
    }
}

/// Check every secret of the catalogue at once.
pub async fn check_all(catalog: &Catalog) -> Vec<Report> {
    join_all(catalog.iter().map(check)).await
}

/// At start-up: every missing grant and every target that cannot be asked is a warning.
/// Start-up goes on (a target may come up later); each rotation checks again.
pub async fn at_start(catalog: &Catalog) {
    for report in check_all(catalog).await {
        match &report.result {
            Ok(missing) => {
                for grant in missing {
                    tracing::warn!(secret = %report.secret, secret.kind = report.kind, preflight.missing = %grant, "secrets.preflight_missing_grant: rotations of this secret are refused until it is granted");
                }
            }
            Err(e) => {
                tracing::warn!(secret = %report.secret, secret.kind = report.kind, error = %e, "secrets.preflight_unavailable");
            }
        }
    }
}
