//! Which rules share one window state. Rules that count the same events under the same keys
//! (the same counting and the same reason filter: the three default address rules) differ
//! only in their window and threshold, and a key's newest entries are the same for all of
//! them; so they keep ONE state per key, as long and as deep as the longest and deepest of
//! them needs, and each rule reads its own window from it. Redis then stores, merges and
//! returns each address's failures once per batch instead of once per rule.
//!
//! A shared state is named after its rule with the longest window (the first of equals):
//! that rule's state from before rules were shared already holds what every rule of the
//! group needs, so an upgrade forgets nothing.

use super::rule::Rule;
use crate::domain::auth_event::Cause;
use crate::domain::detection::Counting;

/// One window state and the shape its rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowState {
    /// The name its Redis hash is stored under (a rule's name).
    pub name: String,
    /// How many of a key's newest entries are kept: the most any of its rules keeps.
    pub keep: u32,
    /// How long entries must be kept: the longest of its rules' windows (ms).
    pub window_ms: i64,
}

/// The rules' window states, and which each rule reads.
#[derive(Debug)]
pub struct WindowStates {
    pub states: Vec<WindowState>,
    /// `of_rule[r]`: the index in `states` of rule `r`'s state.
    pub of_rule: Vec<usize>,
}

impl WindowStates {
    pub fn of(rules: &[Rule]) -> Self {
        let mut shapes: Vec<(Counting, Option<Cause>)> = Vec::new();
        let mut states: Vec<WindowState> = Vec::new();
        let mut of_rule = Vec::with_capacity(rules.len());
        for rule in rules {
            let shape = (rule.counting, rule.cause);
            let s = match shapes.iter().position(|s| *s == shape) {
                Some(s) => s,
                None => {
                    shapes.push(shape);
                    states.push(WindowState {
                        name: rule.name.clone(),
                        keep: rule.keep,
                        window_ms: rule.window.length_ms,
                    });
                    states.len() - 1
                }
            };
            let state = &mut states[s];
            state.keep = state.keep.max(rule.keep);
            if rule.window.length_ms > state.window_ms {
                state.window_ms = rule.window.length_ms;
                state.name.clone_from(&rule.name);
            }
            of_rule.push(s);
        }
        WindowStates { states, of_rule }
    }

    /// Rule `r`'s state.
    pub fn of_rule(&self, r: usize) -> &WindowState {
        &self.states[self.of_rule[r]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LoginSettings;

    fn rules(toml: &str) -> Vec<Rule> {
        let settings: LoginSettings = toml::from_str(toml).expect("settings");
        Rule::all_of(&settings)
    }

    #[test]
    fn rules_counting_the_same_events_share_the_longest_and_deepest_state() {
        let rules = rules(
            r#"
            [[rules]]
            name = "fast"
            kind = "ip"
            fire_at = 11
            window_secs = 60
            [[rules]]
            name = "deep"
            kind = "ip"
            fire_at = 100
            window_secs = 600
            [[rules]]
            name = "long"
            kind = "ip"
            fire_at = 20
            window_secs = 86400
            [[rules]]
            name = "unknown-only"
            kind = "ip"
            fire_at = 5
            window_secs = 600
            reason = "unknown_user"
            [[rules]]
            name = "spray"
            kind = "spray"
            fire_at = 20
            window_secs = 600
            [[rules]]
            name = "lockout"
            kind = "account"
            fire_at = 5
            window_secs = 900
            "#,
        );
        let states = WindowStates::of(&rules);
        assert_eq!(states.of_rule, vec![0, 0, 0, 1, 2, 3]);
        // keep is max(4 × fire_at, 256): "deep" keeps 400.
        let shared = WindowState {
            name: "long".into(),
            keep: 400,
            window_ms: 86_400_000,
        };
        assert_eq!(states.states[0], shared);
        let alone = |name: &str, window_ms| WindowState {
            name: name.into(),
            keep: 256,
            window_ms,
        };
        assert_eq!(states.states[1], alone("unknown-only", 600_000));
        assert_eq!(states.states[2], alone("spray", 600_000));
        assert_eq!(states.states[3], alone("lockout", 900_000));
        assert_eq!(states.of_rule(1).name, "long");
    }

    #[test]
    fn of_equal_windows_the_first_rule_names_the_state() {
        let rules = rules(
            r#"
            [[rules]]
            name = "a"
            kind = "account"
            fire_at = 5
            window_secs = 900
            [[rules]]
            name = "b"
            kind = "account"
            fire_at = 9
            window_secs = 900
            "#,
        );
        let states = WindowStates::of(&rules);
        assert_eq!(states.of_rule, vec![0, 0]);
        assert_eq!(states.states[0].name, "a");
    }
}
