//! What `opsguard config check` verifies beyond start-up's rules: every target parses (check
//! URLs and DSNs, `host:port` pairs, backup DSNs), every managed secret's entry, the master
//! key's length, chat lists; then, as warnings, a `pg_dump` older than a target's server.
//! Problems name the setting (and a list item by index), never a DSN: it may hold a password.

use super::Settings;
use crate::backups::pgenv::PgEnv;
use crate::domain::secret::Secret;
use std::time::Duration;

impl Settings {
    /// Every target, secret and chat that cannot work, one line each.
    pub fn target_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let c = &self.checks;
        for (i, url) in c.http_headers.urls.iter().enumerate() {
            if !url_with(url, &["http", "https"]) {
                out.push(format!(
                    "checks.http_headers.urls[{i}] '{url}': expected an http:// or https:// URL"
                ));
            }
        }
        for (i, target) in c.tls.targets.iter().enumerate() {
            if !host_port(target) {
                out.push(format!(
                    "checks.tls.targets[{i}] '{target}': expected host:port"
                ));
            }
        }
        for (i, dsn) in c.postgres.dsns.iter().enumerate() {
            if !url_with(dsn.expose(), &["postgres", "postgresql"]) {
                out.push(format!(
                    "checks.postgres.dsns[{i}] ({dsn}): expected a postgres:// URL"
                ));
            }
        }
        for (i, url) in c.redis.urls.iter().enumerate() {
            if !url_with(url.expose(), &["redis", "rediss"]) {
                out.push(format!(
                    "checks.redis.urls[{i}] ({url}): expected a redis:// or rediss:// URL"
                ));
            }
        }
        for t in &self.backups.targets {
            if let Err(e) = PgEnv::parse(&t.dsn) {
                out.push(format!("backups.targets '{}': {e}", t.name));
            }
        }
        if let Some(dsn) = &self.backups.scratch_dsn
            && let Err(e) = PgEnv::parse(dsn)
        {
            out.push(format!("backups.scratch_dsn: {e}"));
        }
        for entry in &self.secrets {
            let mut one = self.clone();
            one.secrets = vec![entry.clone()];
            if let Err(e) = crate::secrets::catalog::Catalog::build(&one) {
                out.push(e.to_string());
            }
        }
        let mut names: Vec<&str> = self.secrets.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        for pair in names.windows(2).filter(|p| p[0] == p[1]) {
            out.push(format!("[[secrets]] '{}': declared twice", pair[0]));
        }
        if let Some(key) = self.master_key.as_ref().filter(|k| !k.is_empty()) {
            out.extend(master_key_problem(key));
        }
        let chats = [
            ("logins.alert_chats", &self.logins.alert_chats),
            ("backups.alert_chats", &self.backups.alert_chats),
            ("rotation.alert_chats", &self.rotation.alert_chats),
            ("audit.checkpoint_chats", &self.audit.checkpoint_chats),
        ];
        for (key, list) in chats {
            if list.contains(&0) {
                out.push(format!(
                    "{key}: 0 is not a chat (a user's id, or a group's negative id)"
                ));
            }
        }
        out
    }

    /// A `pg_dump` older than a backup target's server, or a server that cannot be asked.
    pub async fn pg_dump_warnings(&self) -> Vec<String> {
        if self.backups.targets.is_empty() {
            return Vec::new();
        }
        let pg_dump = &self.backups.pg_dump;
        let local = match crate::backups::pgversion::local_major(pg_dump) {
            Ok(v) => v,
            Err(e) => return vec![format!("backups: {e}")],
        };
        let timeout = Duration::from_millis(self.checks.timeout_ms.max(1000));
        let mut out = Vec::new();
        for t in &self.backups.targets {
            let Ok(env) = PgEnv::parse(&t.dsn) else {
                continue;
            };
            match crate::backups::pgversion::server_major(&env, timeout).await {
                Ok(server) => out.extend(
                    crate::backups::pgversion::too_old(local, server, pg_dump)
                        .map(|w| format!("backups.targets '{}': {w}", t.name)),
                ),
                Err(e) => out.push(format!(
                    "backups.targets '{}' ({}): cannot compare pg_dump {local} with the \
                     server's version: {e}",
                    t.name,
                    env.display()
                )),
            }
        }
        out
    }
}

fn master_key_problem(key: &Secret) -> Option<String> {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD.decode(key.expose().trim());
    match decoded {
        Ok(bytes) if bytes.len() == 32 => None,
        Ok(bytes) => Some(format!(
            "OPSGUARD_MASTER_KEY: decodes to {} bytes; it must be base64 of exactly 32 \
             (make one with `openssl rand -base64 32`)",
            bytes.len()
        )),
        Err(_) => Some(
            "OPSGUARD_MASTER_KEY: not base64; it must be base64 of exactly 32 bytes \
             (make one with `openssl rand -base64 32`)"
                .into(),
        ),
    }
}

fn url_with(text: &str, schemes: &[&str]) -> bool {
    reqwest::Url::parse(text).is_ok_and(|u| schemes.contains(&u.scheme()) && u.has_host())
}

/// `host:port` with a port in 1-65535 (`[::1]:443` for IPv6).
fn host_port(text: &str) -> bool {
    let Some((host, port)) = text.rsplit_once(':') else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    !host.is_empty()
        && !host.contains(char::is_whitespace)
        && port.parse::<u16>().is_ok_and(|p| p > 0)
}
