//! `/outbox [retry [id…]]`: the dead letters (pushes the outbox gave up on), or re-send them
//! (all, or the ids named), as `opsguard outbox retry` does from a shell.

/// At most this many ids in one `/outbox retry`.
pub const MAX_IDS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxAction {
    /// List the dead letters.
    DeadLetters,
    /// Re-send dead letters: these ids, or every one (empty).
    Retry(Vec<i64>),
}

impl OutboxAction {
    pub fn parse(args: &[&str]) -> Result<OutboxAction, String> {
        match args {
            [] => Ok(OutboxAction::DeadLetters),
            ["retry", ids @ ..] if ids.len() <= MAX_IDS => ids
                .iter()
                .map(|id| match id.trim_start_matches('#').parse::<i64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err("a dead letter id is a positive number, e.g. 17 or #17".to_string()),
                })
                .collect::<Result<Vec<i64>, String>>()
                .map(OutboxAction::Retry),
            ["retry", ..] => Err(format!("at most {MAX_IDS} ids at once")),
            _ => Err("expected nothing, 'retry' or 'retry <id>…'".into()),
        }
    }

    /// The arguments as the audit log keeps them.
    pub fn args(&self) -> String {
        match self {
            OutboxAction::DeadLetters => String::new(),
            OutboxAction::Retry(ids) if ids.is_empty() => "retry".into(),
            OutboxAction::Retry(ids) => {
                let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
                format!("retry {}", ids.join(" "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_retries_all_or_named_ids_and_refuses_anything_else() {
        assert_eq!(OutboxAction::parse(&[]), Ok(OutboxAction::DeadLetters));
        assert_eq!(
            OutboxAction::parse(&["retry"]),
            Ok(OutboxAction::Retry(vec![]))
        );
        assert_eq!(
            OutboxAction::parse(&["retry", "17", "#18"]),
            Ok(OutboxAction::Retry(vec![17, 18]))
        );
        assert_eq!(OutboxAction::Retry(vec![17, 18]).args(), "retry 17 18");
        for bad in [
            &["retry", "x"][..],
            &["retry", "-3"],
            &["retry", "0"],
            &["send"],
        ] {
            assert!(OutboxAction::parse(bad).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (1..=51).map(|i| i.to_string()).collect();
        let mut args = vec!["retry"];
        args.extend(many.iter().map(String::as_str));
        assert!(OutboxAction::parse(&args).is_err());
    }
}
