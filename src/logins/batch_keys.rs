//! A batch's failures grouped the two ways detection needs them: per rule and key (what
//! each rule judges) and per window state and key (what is exchanged with the windows:
//! once for all the rules that share a state, see `window_states`).

use super::rule::{self, Rule, account_of};
use super::window_states::WindowStates;
use super::windows::{Entries, WindowUpdate};
use crate::domain::auth_event::AuthEvent;
use crate::domain::detection::EventKey;
use std::collections::HashMap;

/// A batch's failures of one rule and key: (rule index, key) and the events' indexes.
pub type Group<'a> = ((usize, EventKey<'a>), Vec<usize>);

pub struct BatchKeys<'e> {
    /// Per rule and key, a rule's keys adjacent.
    pub groups: Vec<Group<'e>>,
    /// Per window state and key (a slot): its first group. The groups of rules sharing a
    /// state count the same events, so any of them stands for all.
    pub first_group: Vec<usize>,
    /// Per group: its slot.
    pub slot_of: Vec<usize>,
}

impl<'e> BatchKeys<'e> {
    pub fn of(
        rules: &[Rule],
        states: &WindowStates,
        ignore: &[ipnet::IpNet],
        events: &'e [AuthEvent],
    ) -> Self {
        let mut groups: Vec<Group<'e>> = rule::by_key(rules, ignore, events).into_iter().collect();
        // A state's keys adjacent: the exchange sends their shared parameters once.
        groups.sort_unstable_by_key(|((r, _), _)| (states.of_rule[*r], *r));
        let mut at: HashMap<(usize, &EventKey<'_>), usize> = HashMap::new();
        let mut first_group = Vec::new();
        let mut slot_of = Vec::with_capacity(groups.len());
        for (g, ((r, key), _)) in groups.iter().enumerate() {
            let slot = *at.entry((states.of_rule[*r], key)).or_insert_with(|| {
                first_group.push(g);
                first_group.len() - 1
            });
            slot_of.push(slot);
        }
        BatchKeys {
            groups,
            first_group,
            slot_of,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The group standing for slot `p`.
    pub fn slot(&self, p: usize) -> &Group<'e> {
        &self.groups[self.first_group[p]]
    }

    /// Each slot's new entries, in slot order.
    pub fn updates(
        &self,
        rules: &[Rule],
        states: &WindowStates,
        events: &[AuthEvent],
        times: &[i64],
    ) -> Vec<WindowUpdate> {
        (0..self.first_group.len())
            .map(|p| {
                let ((r, key), members) = self.slot(p);
                let state = states.of_rule(*r);
                WindowUpdate {
                    rule: state.name.clone(),
                    key: key.to_string(),
                    cap: state.keep,
                    window_ms: state.window_ms,
                    entries: if rules[*r].counting.counts_accounts() {
                        let accounts = members
                            .iter()
                            .map(|&i| (times[i], account_of(&events[i]).to_string()));
                        Entries::Accounts(accounts.collect())
                    } else {
                        Entries::Events(members.iter().map(|&i| times[i]).collect())
                    },
                }
            })
            .collect()
    }
}
