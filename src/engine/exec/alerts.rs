//! `/alerts [id]` (active login alerts and silences, or one alert in detail), `/ack <id>`
//! and `/silence <alert-id|rule|key> <duration>`. The same commands sit behind the
//! Ack / Silence 1h / Details buttons of a pushed alert.

use super::logins::short;
use super::{Ctx, ExecError, ExecResult, human_duration, when};
use crate::domain::Reply;
use crate::domain::command::{SilenceRequest, SilenceTarget, format_duration};
use crate::domain::html::escape;
use crate::logins::alert_admin::{self, Acked, AlertRow};
use chrono::{DateTime, Utc};

fn clock(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S UTC").to_string()
}

/// How long ago `since` was, e.g. `12m 5s`.
fn age(since: DateTime<Utc>) -> String {
    human_duration((Utc::now() - since).num_seconds().max(0) as u64)
}

fn state_marks(a: &AlertRow) -> String {
    let mut marks = String::new();
    if let Some(by) = a.acked_by {
        marks.push_str(&format!(" · ✅ acked by {by}"));
    }
    if a.silenced {
        marks.push_str(" · 🔕 silenced");
    }
    marks
}

pub(super) async fn list(ctx: &Ctx<'_>, id: Option<i64>) -> ExecResult {
    if let Some(id) = id {
        return details(ctx, id).await;
    }
    let pool = ctx.engine.pool();
    let cooldown = ctx.engine.settings().logins.cooldown_secs;
    let (active, silences) = tokio::try_join!(
        alert_admin::active(pool, cooldown, 30),
        alert_admin::silences(pool)
    )?;
    let mut text = if active.is_empty() {
        "✅ No active login alerts.\n".to_string()
    } else {
        format!("<b>🚨 Active login alerts ({})</b>\n", active.len())
    };
    for a in &active {
        text.push_str(&format!(
            "\n<b>#{}</b> {} · <code>{}</code>\n{} failures · since {} ({} ago) · last {}{}\n",
            a.id,
            escape(&a.rule),
            escape(&short(&a.key)),
            a.count,
            clock(a.first_at),
            age(a.first_at),
            clock(a.last_at),
            state_marks(a)
        ));
    }
    if !silences.is_empty() {
        text.push_str("\n<b>🔕 Silences</b>\n");
        for s in &silences {
            let by = s.created_by.map(|u| format!(" by {u}")).unwrap_or_default();
            text.push_str(&format!(
                "<code>{}</code> until {}{by}\n",
                escape(&short(&s.matcher)),
                when(s.until)
            ));
        }
    }
    if !active.is_empty() {
        text.push_str("\n<code>/alerts &lt;id&gt;</code> details · <code>/ack &lt;id&gt;</code> · <code>/silence &lt;id&gt; 1h</code>");
    }
    Ok(Reply::html(text))
}

async fn details(ctx: &Ctx<'_>, id: i64) -> ExecResult {
    let pool = ctx.engine.pool();
    let alert = alert_admin::one(pool, id)
        .await?
        .ok_or_else(|| ExecError::Refused(format!("There is no alert #{id}.")))?;
    let involved = alert_admin::involved(pool, &alert, 10).await?;
    let mut text = format!(
        "<b>🔎 Alert #{}</b> · {}\nrule <b>{}</b> · key <code>{}</code>\n{} failures\nfirst {} · last {} · raised {}\nstate {}{}\n",
        alert.id,
        if alert.state == "open" {
            "open"
        } else {
            "closed"
        },
        escape(&alert.rule),
        escape(&alert.key),
        alert.count,
        when(alert.first_at),
        when(alert.last_at),
        when(alert.fired_at),
        escape(&alert.state),
        state_marks(&alert)
    );
    if !involved.is_empty() {
        let title = if alert.key.starts_with("ip:") || alert.key.starts_with("spray:") {
            "Accounts tried from this IP"
        } else {
            "IPs that failed on this account"
        };
        text.push_str(&format!("\n<b>{title}</b>\n"));
        for (name, n) in &involved {
            text.push_str(&format!("{n:>6}  <code>{}</code>\n", escape(&short(name))));
        }
    }
    Ok(Reply::html(text))
}

pub(super) async fn ack(ctx: &Ctx<'_>, id: i64) -> ExecResult {
    let by = ctx.req.actor.user.map(|u| u.0).unwrap_or(0);
    match alert_admin::ack(ctx.engine.pool(), id, by).await? {
        Acked::Now(a) => Ok(Reply::html(format!(
            "✅ Alert #{} acknowledged ({} · <code>{}</code>). It stays listed while active.",
            a.id,
            escape(&a.rule),
            escape(&short(&a.key))
        ))),
        Acked::Already(a) => Ok(Reply::html(format!(
            "Alert #{} was already acknowledged by {} at {}.",
            a.id,
            a.acked_by.unwrap_or(0),
            a.acked_at.map(clock).unwrap_or_default()
        ))),
        Acked::Missing => Err(ExecError::Refused(format!("There is no alert #{id}."))),
    }
}

pub(super) async fn silence(ctx: &Ctx<'_>, request: &SilenceRequest) -> ExecResult {
    let pool = ctx.engine.pool();
    let matcher = match &request.target {
        SilenceTarget::Alert(id) => alert_admin::one(pool, *id)
            .await?
            .map(|a| a.key)
            .ok_or_else(|| ExecError::Refused(format!("There is no alert #{id}.")))?,
        SilenceTarget::Matcher(m) if m.contains(':') || m == "all" => m.clone(),
        SilenceTarget::Matcher(rule) => {
            let rules = &ctx.engine.settings().logins.rules;
            if !rules.iter().any(|r| &r.name == rule) {
                let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
                return Err(ExecError::Refused(format!(
                    "No rule named {rule}. Rules: {}. Or give an alert id or a key like ip:203.0.113.7.",
                    names.join(", ")
                )));
            }
            rule.clone()
        }
    };
    let until = Utc::now() + request.duration;
    let by = ctx.req.actor.user.map(|u| u.0);
    let row = alert_admin::silence(pool, &matcher, until, by).await?;
    Ok(Reply::html(format!(
        "🔕 Silenced <code>{}</code> for {} — until {}. New alerts for it are recorded, not pushed.",
        escape(&short(&row.matcher)),
        format_duration(request.duration),
        when(row.until)
    )))
}
