//! Detection against real Redis and PostgreSQL: sliding windows, rules, alerts, silences.
