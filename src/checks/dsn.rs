//! Credentials in connection strings: what a DSN or URL may show (host, port, database)
//! and how an error text is scrubbed of it before it reaches a finding.

/// Removes `secret` (a DSN or URL) and its password from an error text: the password of
/// the URL userinfo (the whole userinfo when it has no `:`), and `password=` in a query
/// string or a key-value DSN. The result is cut short.
pub fn scrub(text: &str, secret: &str) -> String {
    scrubbed(text, secret).chars().take(200).collect()
}

/// As `scrub`, but keeps the last `max` characters: where a tool's stderr says what failed.
pub fn scrub_keep_end(text: &str, secret: &str, max: usize) -> String {
    let text = scrubbed(text, secret);
    let skip = text.chars().count().saturating_sub(max);
    text.chars().skip(skip).collect()
}

fn scrubbed(text: &str, secret: &str) -> String {
    let mut text = text.replace(secret, "<dsn>");
    let userinfo = secret
        .split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?']).next())
        .and_then(|authority| authority.rsplit_once('@'))
        .map(|(userinfo, _)| userinfo.split_once(':').map_or(userinfo, |(_, p)| p));
    let pairs = secret
        .split(['?', '&', ' '])
        .filter_map(|pair| pair.trim().strip_prefix("password="));
    for password in userinfo.into_iter().chain(pairs) {
        let password = password.trim_matches('\'');
        if !password.is_empty() {
            text = text.replace(password, "<password>");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::scrub;
    use crate::checks::{postgres, redis};

    #[test]
    fn scrub_removes_passwords_of_every_form() {
        for dsn in [
            "postgres://u:s3cret@db:5432/app",
            "postgres://u@db/app?sslmode=require&password=s3cret",
            "host=db user=u password=s3cret",
            "redis://:s3cret@cache:6379/0",
            "redis://s3cret@cache",
        ] {
            let shown = scrub(&format!("failed: s3cret at {dsn}"), dsn);
            assert!(!shown.contains("s3cret"), "{shown}");
        }
    }

    #[test]
    fn targets_show_host_port_and_database_only() {
        let pg = postgres::display("postgres://u:s3cret@db.internal:6432/app?sslmode=require");
        assert_eq!(pg.as_deref(), Some("db.internal:6432/app"));
        let shown = redis::display("redis://u:s3cret@cache.internal:6380/2");
        assert_eq!(shown.as_deref(), Some("cache.internal:6380"));
        let shown = redis::display("rediss://:s3cret@cache.internal");
        assert_eq!(shown.as_deref(), Some("cache.internal:6379"));
        assert_eq!(redis::display("http://x"), None);
    }
}
